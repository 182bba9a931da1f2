using System.Net.Sockets;

namespace Norman.Daemon.Control;

/// <summary>
/// The control socket: a Unix stream socket that applications and admin tools connect to. Refuses to start over a
/// live daemon's socket, replaces a stale one, and removes its file when stopped.
/// </summary>
public sealed class ControlServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly ControlPlane _plane;
    private readonly ILogSink _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _sessions = new();
    /// <summary>Open control connections by uid: a user may hold only so many (each is a descriptor in the daemon).</summary>
    private readonly Dictionary<int, int> _connectionsByUid = new();
    private readonly int _maxConnectionsPerUid;
    private Task? _acceptLoop;

    private ControlServer(string path, Socket listener, ControlPlane plane, ILogSink log, int maxConnectionsPerUid)
    {
        Path = path;
        _listener = listener;
        _plane = plane;
        _log = log;
        _maxConnectionsPerUid = maxConnectionsPerUid;
    }

    public const int DefaultMaxConnectionsPerUid = 8192;

    public string Path { get; }

    public static ControlServer Start(string path, ControlPlane plane, ILogSink log, UnixFileMode mode,
        int maxConnectionsPerUid = DefaultMaxConnectionsPerUid)
    {
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        if (File.Exists(path))
        {
            if (IsLive(path))
            {
                throw new InvalidOperationException(
                    $"Another Norman daemon is already listening on {path}. Stop it first, or start this one with --socket PATH.");
            }
            File.Delete(path);
        }
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, mode);
            listener.Listen(512);
        }
        catch (SocketException error)
        {
            listener.Dispose();
            throw new InvalidOperationException($"Cannot listen on {path}: {error.Message}. Check that its directory is writable (or run as root for /run/norman).", error);
        }
        var server = new ControlServer(path, listener, plane, log, maxConnectionsPerUid);
        server._acceptLoop = server.AcceptLoopAsync();
        return server;
    }

    private static bool IsLive(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception error) when (error is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                break;
            }
            PeerIdentity identity;
            try
            {
                identity = PeerIdentity.Of(connection);
            }
            catch (SocketException error)
            {
                _log.Warn($"could not read the peer credentials of a control connection: {error.Message}");
                connection.Dispose();
                continue;
            }
            string? refusal = null;
            lock (_connectionsByUid)
            {
                int open = _connectionsByUid.GetValueOrDefault(identity.Uid);
                if (open >= _maxConnectionsPerUid)
                {
                    refusal = $"uid {identity.Uid} already holds {open} control connections to Norman, the limit (each socket of the client " +
                        "library holds one). Close some sockets, or raise the daemon's --max-connections-per-uid.";
                }
                else
                {
                    _connectionsByUid[identity.Uid] = open + 1;
                }
            }
            var session = new ControlSession(connection, identity, _plane, _log) { Refusal = refusal };
            lock (_sessions)
            {
                _sessions.RemoveAll(t => t.IsCompleted);
                _sessions.Add(Task.Run(() => RunAsync(session)));
            }
        }
    }

    private async Task RunAsync(ControlSession session)
    {
        try
        {
            await session.RunAsync(_stopping.Token);
        }
        finally
        {
            if (session.Refusal is null)
            {
                lock (_connectionsByUid)
                {
                    int open = _connectionsByUid[session.Identity.Uid] - 1;
                    if (open == 0)
                    {
                        _connectionsByUid.Remove(session.Identity.Uid);
                    }
                    else
                    {
                        _connectionsByUid[session.Identity.Uid] = open;
                    }
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _listener.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop;
        }
        Task[] sessions;
        lock (_sessions)
        {
            sessions = _sessions.ToArray();
        }
        await Task.WhenAll(sessions);
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
        _stopping.Dispose();
    }
}
