using System.Net.Sockets;
using System.Text.Json;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Daemon.Control;

/// <summary>
/// One application's control connection. Requests are handled one at a time, in order. When the connection
/// closes — the application exited, crashed or was killed — every socket it owned is released at once.
/// </summary>
public sealed class ControlSession(Socket connection, PeerIdentity identity, ControlPlane plane, ILogSink log)
{
    private readonly Dictionary<long, NormanSocket> _owned = new();
    private readonly List<Capture.CaptureTap> _taps = new();

    public void Own(Capture.CaptureTap tap)
    {
        lock (_taps)
        {
            _taps.Add(tap);
        }
    }

    public Capture.CaptureTap? FindTap(long id)
    {
        lock (_taps)
        {
            return _taps.FirstOrDefault(t => t.Id == id);
        }
    }

    public PeerIdentity Identity { get; } = identity;

    /// <summary>Set when the connection is over a limit: its first request is answered with this, and it is closed.</summary>
    public string? Refusal { get; init; }

    public void Own(NormanSocket socket)
    {
        lock (_owned)
        {
            _owned[socket.Id] = socket;
        }
    }

    public void Disown(NormanSocket socket)
    {
        lock (_owned)
        {
            _owned.Remove(socket.Id);
        }
    }

    public NormanSocket? Find(long id)
    {
        lock (_owned)
        {
            return _owned.GetValueOrDefault(id);
        }
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        var prefix = new byte[4];
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                if (!await ReadExactlyAsync(prefix, stopping))
                {
                    break;
                }
                int length = ControlProtocol.ReadLength(prefix);
                var body = new byte[length];
                if (!await ReadExactlyAsync(body, stopping))
                {
                    break;
                }
                if (Refusal is not null)
                {
                    FdPassing.Send((int)connection.Handle, ControlProtocol.Encode(Refused(0, ControlProtocol.Errors.TooManySockets, Refusal)), []);
                    log.Info($"refused a control connection of {Identity.ProcessName} (pid {Identity.Pid}, uid {Identity.Uid}): {Refusal}");
                    break;
                }
                var (response, fds) = await HandleAsync(body);
                FdPassing.Send((int)connection.Handle, ControlProtocol.Encode(response), fds);
            }
        }
        catch (Exception error) when (error is IOException or SocketException or InvalidDataException or OperationCanceledException)
        {
            log.Info($"control connection of pid {Identity.Pid} ended: {error.Message}");
        }
        finally
        {
            await ReleaseAllAsync();
            connection.Dispose();
        }
    }

    private async Task<(ControlResponse, int[])> HandleAsync(byte[] body)
    {
        ControlRequest request;
        try
        {
            request = ControlProtocol.DecodeRequest(body);
        }
        catch (JsonException error)
        {
            return (Refused(0, ControlProtocol.Errors.InvalidArgument, $"Malformed control request: {error.Message}"), []);
        }
        try
        {
            return await plane.HandleAsync(this, request);
        }
        catch (ControlException refused)
        {
            log.Info($"refused {request.Op} from {Identity.ProcessName} (pid {Identity.Pid}, uid {Identity.Uid}): {refused.Message}");
            return (Refused(request.Id, refused.Code, refused.Message), []);
        }
    }

    private static ControlResponse Refused(long id, string code, string message) =>
        new() { Id = id, Ok = false, Error = new ControlError(code, message) };

    private async Task<bool> ReadExactlyAsync(Memory<byte> buffer, CancellationToken stopping)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int got = await connection.ReceiveAsync(buffer[read..], SocketFlags.None, stopping);
            if (got == 0)
            {
                return false;
            }
            read += got;
        }
        return true;
    }

    /// <summary>Releases every socket and capture the session holds, as when its connection closes.</summary>
    public async Task ReleaseAllAsync()
    {
        List<NormanSocket> owned;
        lock (_owned)
        {
            owned = _owned.Values.ToList();
        }
        foreach (var socket in owned)
        {
            await plane.CloseAsync(this, socket);
        }
        List<Capture.CaptureTap> taps;
        lock (_taps)
        {
            taps = _taps.ToList();
            _taps.Clear();
        }
        foreach (var tap in taps)
        {
            await plane.StopCaptureAsync(tap);
        }
    }
}
