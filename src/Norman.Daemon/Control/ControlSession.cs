using System.Net.Sockets;
using System.Text.Json;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Daemon.Control;

/// <summary>
/// One application's control connection. Requests are handled one at a time, in order. When the connection
/// closes — the application exited, crashed or was killed — every socket it owned is released at once.
/// </summary>
/// <remarks>
/// What a connection may cost the daemon is bounded: a request's size (<see cref="MaxOrdinaryRequestBytes"/> for an
/// ordinary user, whose operations need little; the protocol's 16 MiB for an administrator's policy), the bytes of
/// requests still arriving on all of one user's connections (<paramref name="pendingRequests"/>, taken by the declared
/// length before anything is allocated), and the time an answer may wait for a caller that does not read
/// (<see cref="SendTimeout"/>, waited without a thread): then the connection is closed.
/// </remarks>
public sealed class ControlSession(Socket connection, PeerIdentity identity, ControlPlane plane, ILogSink log, UserBudget? pendingRequests = null)
{
    /// <summary>The largest request an ordinary user may send: a bind, a listing, a capture's expression.</summary>
    public const int MaxOrdinaryRequestBytes = 64 << 10;

    /// <summary>Bytes of unfinished requests one ordinary user's connections may hold in the daemon together.</summary>
    public const long DefaultPendingBytesPerUid = 4 << 20;

    /// <summary>How long an answer waits for a caller that does not read before the connection is closed.</summary>
    public static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(5);

    private readonly Dictionary<long, NormanSocket> _owned = new();
    private readonly List<Capture.CaptureTap> _taps = new();
    private readonly bool _administrator = plane.IsAdministrator(identity);

    public void Own(Capture.CaptureTap tap)
    {
        lock (_taps)
        {
            _taps.Add(tap);
        }
    }

    public bool Disown(Capture.CaptureTap tap)
    {
        lock (_taps)
        {
            return _taps.Remove(tap);
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
        string who = $"{Identity.ProcessName} (pid {Identity.Pid}, uid {Identity.Uid})";
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                if (!await ReadExactlyAsync(prefix, stopping))
                {
                    break;
                }
                int length = ControlProtocol.ReadLength(prefix);
                if (await RefuseSizeAsync(length, stopping) is { } refusal)
                {
                    log.Info($"closed the control connection of {who}: {refusal}");
                    break;
                }
                byte[] body;
                try
                {
                    body = new byte[length];
                    if (!await ReadExactlyAsync(body, stopping))
                    {
                        break;
                    }
                }
                finally
                {
                    if (!_administrator)
                    {
                        pendingRequests?.Return(Identity.Uid, length);
                    }
                }
                _afterAnswer = null;
                var (response, fds, reply) = await HandleAsync(body);
                if (reply)
                {
                    await SendAsync(response, fds, stopping);
                }
                _afterAnswer?.Invoke(); // the answer and its descriptors are the caller's now
            }
        }
        catch (Exception error) when (error is IOException or SocketException or InvalidDataException or OperationCanceledException)
        {
            log.Info($"control connection of {who} ended: {error.Message}");
        }
        finally
        {
            await ReleaseAllAsync();
            connection.Dispose();
        }
    }

    /// <summary>
    /// Answers a request the connection may not send (too large for this caller, or over the user's bytes under way)
    /// and returns why; null when it may be read, its length then taken from the user's budget.
    /// </summary>
    private async Task<string?> RefuseSizeAsync(int length, CancellationToken stopping)
    {
        int limit = _administrator ? ControlProtocol.MaxMessageBytes : MaxOrdinaryRequestBytes;
        string? refusal = null;
        if (length > limit)
        {
            refusal = $"A request of {length} bytes is over the {limit}-byte limit for uid {Identity.Uid}" +
                (_administrator ? "." : " (only an administrator's policy needs more).");
        }
        else if (pendingRequests is not null && !_administrator && !pendingRequests.TryTake(Identity.Uid, length))
        {
            refusal = $"uid {Identity.Uid} already has {pendingRequests.Held(Identity.Uid)} bytes of requests under way on its connections, " +
                $"and {pendingRequests.LimitPerUid} is the limit. Finish sending them first.";
        }
        if (refusal is null)
        {
            return null;
        }
        await SendAsync(Refused(0, ControlProtocol.Errors.MessageTooLong, refusal), [], stopping);
        return refusal;
    }

    /// <summary>Handles one request; the answer, its descriptors, and whether to send it (not when the caller asked for none).</summary>
    private async Task<(ControlResponse, int[], bool Reply)> HandleAsync(byte[] body)
    {
        ControlRequest request;
        try
        {
            request = ControlProtocol.DecodeRequest(body);
        }
        catch (JsonException error)
        {
            return (Refused(0, ControlProtocol.Errors.InvalidArgument, $"Malformed control request: {error.Message}"), [], true);
        }
        bool reply = request.NoReply != true;
        try
        {
            var (response, fds) = await plane.HandleAsync(this, request);
            return (response, fds, reply);
        }
        catch (ControlException refused)
        {
            log.Info($"refused {request.Op} from {Identity.ProcessName} (pid {Identity.Pid}, uid {Identity.Uid}): {refused.Message}");
            return (Refused(request.Id, refused.Code, refused.Message), [], reply);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // A request the daemon should have refused cleanly: the caller is told, the daemon goes on, the log has why.
            log.Warn($"{request.Op} from {Identity.ProcessName} (pid {Identity.Pid}, uid {Identity.Uid}) failed: {error}");
            return (Refused(request.Id, ControlProtocol.Errors.Internal,
                $"The daemon failed on this {request.Op} request ({error.GetType().Name}: {error.Message}); its log has the details."), [], reply);
        }
    }

    /// <summary>
    /// Sends an answer (its fds on the first byte), without holding a thread while a slow caller reads; a caller that
    /// has not taken it within <see cref="SendTimeout"/> loses the connection. An answer over the protocol's size
    /// bound is replaced by a refusal saying so: the daemon never sends what a client must reject.
    /// </summary>
    private async Task SendAsync(ControlResponse response, int[] fds, CancellationToken stopping)
    {
        byte[] message = ControlProtocol.Encode(response);
        if (message.Length - 4 > ControlProtocol.MaxMessageBytes)
        {
            log.Warn($"the answer to request {response.Id} would be {message.Length} bytes, over the protocol's {ControlProtocol.MaxMessageBytes}");
            message = ControlProtocol.Encode(Refused(response.Id, ControlProtocol.Errors.MessageTooLong,
                $"The answer would be {message.Length} bytes, over the protocol's {ControlProtocol.MaxMessageBytes}-byte limit."));
            fds = [];
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(SendTimeout);
        int sent = FdPassing.TrySend((int)connection.Handle, message, fds);
        while (sent == 0)
        {
            // Not even the first byte fits: the caller has left earlier answers unread. Wait, but not on a thread.
            await Task.Delay(TimeSpan.FromMilliseconds(5), deadline.Token);
            sent = FdPassing.TrySend((int)connection.Handle, message, fds);
        }
        if (sent < message.Length)
        {
            await connection.SendAsync(message.AsMemory(sent), SocketFlags.None, deadline.Token);
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

    /// <summary>What the request being handled does once its answer has gone out; dropped if it never does.</summary>
    private Action? _afterAnswer;

    /// <summary>Runs <paramref name="action"/> once this request's answer (and the descriptors it passes) has been sent.</summary>
    public void AfterAnswer(Action action) => _afterAnswer = action;

    /// <summary>Closes still finishing behind their answers; the session's end waits for them.</summary>
    private readonly List<Task> _finishing = new();

    /// <summary>A close that finishes after its answer: its failure is logged, and the session's end waits for it.</summary>
    public void Finishing(Task closing)
    {
        lock (_finishing)
        {
            _finishing.RemoveAll(task => task.IsCompleted);
            _finishing.Add(closing);
        }
        closing.ContinueWith(task => log.Warn($"close for {Identity.ProcessName} (pid {Identity.Pid}) failed: {task.Exception?.InnerException}"),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>Releases every socket and capture the session holds, as when its connection closes.</summary>
    public async Task ReleaseAllAsync()
    {
        Task[] finishing;
        lock (_finishing)
        {
            finishing = [.. _finishing];
            _finishing.Clear();
        }
        await Task.WhenAll(finishing).ContinueWith(_ => { }, TaskScheduler.Default); // their failures are logged already
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
        }
        foreach (var tap in taps)
        {
            await plane.StopCaptureAsync(this, tap);
        }
    }
}
