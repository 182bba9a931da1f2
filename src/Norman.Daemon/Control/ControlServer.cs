using System.Net.Sockets;
using Norman.Core.Protocol;
using Norman.Core.Shm;

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
    private readonly ControlReactor _reactor;
    /// <summary>Open control connections by uid: a user may hold only so many (each is a descriptor in the daemon).</summary>
    private readonly UserBudget _connections;
    /// <summary>Bytes of requests still arriving, by uid (see <see cref="ControlSession"/>).</summary>
    private readonly UserBudget _pendingRequests = new(ControlSession.DefaultPendingBytesPerUid);
    private Task? _acceptLoop;

    private ControlServer(string path, Socket listener, ControlPlane plane, ILogSink log, int maxConnectionsPerUid)
    {
        Path = path;
        _listener = listener;
        _plane = plane;
        _log = log;
        _connections = new UserBudget(maxConnectionsPerUid);
        _reactor = new ControlReactor(ReleaseAsync, log);
    }

    public const int DefaultMaxConnectionsPerUid = 8192;

    public string Path { get; }

    public static ControlServer Start(string path, ControlPlane plane, ILogSink log, UnixFileMode mode,
        int maxConnectionsPerUid = DefaultMaxConnectionsPerUid)
    {
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"Cannot create {directory} for the control socket: permission denied. Run as root, " +
                "or give --socket a path you may write (clients then find it with --socket or NORMAN_SOCKET).");
        }
        if (File.Exists(path) || Directory.Exists(path))
        {
            if (!IsSocketFile(path))
            {
                throw new InvalidOperationException(
                    $"{path} exists and is not a socket: the daemon replaces only a stale socket of its own, never another file. " +
                    "Give --socket a path that is free (or a dead daemon's socket).");
            }
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
            throw new InvalidOperationException($"Cannot listen on {path}: {error.Message}. Run as a user who may write there, or give --socket a path you may write (clients then find it with --socket or NORMAN_SOCKET).", error);
        }
        var server = new ControlServer(path, listener, plane, log, maxConnectionsPerUid);
        server._acceptLoop = server.AcceptLoopAsync();
        return server;
    }

    /// <summary>Whether the path is a Unix socket (not following a symbolic link), by statx's file type.</summary>
    private static unsafe bool IsSocketFile(string path)
    {
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
        const uint StatxType = 0x1;
        var buffer = stackalloc byte[256]; // struct statx; stx_mode is a u16 at offset 28 on every architecture
        return Libc.Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) == 0 && (*(ushort*)(buffer + 28) & 0xF000) == 0xC000;
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

    /// <summary>
    /// Accepts connections until stopped. Running out of descriptors or memory is a passing state, as for any server,
    /// wherever it strikes (the accept itself with EMFILE, or reading the new connection's credentials, which opens
    /// files in /proc): the connection in hand is closed, the loop waits a moment and accepts again, so that once others
    /// let go the administrator can connect. Only stopping ends it.
    /// </summary>
    private async Task AcceptLoopAsync()
    {
        var backoff = TimeSpan.Zero;
        while (!_stopping.IsCancellationRequested)
        {
            Socket? connection = null;
            try
            {
                connection = await _listener.AcceptAsync(_stopping.Token);
                Open(connection);
                backoff = TimeSpan.Zero;
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                // Stopping closed the listener under the accept: cancelled, disposed, or (a SocketException) aborted,
                // whichever the race made it. A CI run failed a test's dispose on the last.
                connection?.Dispose();
                break;
            }
            catch (Exception error) when (!_stopping.IsCancellationRequested)
            {
                connection?.Dispose();
                if (backoff == TimeSpan.Zero)
                {
                    _log.Warn($"cannot accept control connections ({error.Message}); retrying until resources are freed");
                }
                backoff = TimeSpan.FromMilliseconds(Math.Clamp(backoff.TotalMilliseconds * 2, 10, 500));
                try
                {
                    await Task.Delay(backoff, _stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>Gives an accepted connection its session, or its refusal.</summary>
    private void Open(Socket connection)
    {
        var identity = PeerIdentity.Of(connection);
        if (Admit(identity) is { } refusal)
        {
            Refuse(connection, identity, refusal);
            return;
        }
        _reactor.Add(new ControlSession(connection, identity, _plane, _log, _pendingRequests));
    }

    /// <summary>
    /// Counts a new connection against its user's limit and, for an ordinary user, the daemon's descriptors; returns
    /// why it is refused instead (its first request is answered with that), or null.
    /// </summary>
    private string? Admit(PeerIdentity identity)
    {
        if (!_connections.TryTake(identity.Uid, 1))
        {
            return $"uid {identity.Uid} already holds {_connections.Held(identity.Uid)} control connections to Norman, the limit (each socket of the client " +
                "library holds one). Close some sockets, or raise the daemon's --max-connections-per-uid.";
        }
        bool administrator = _plane.IsAdministrator(identity);
        if (!_plane.Descriptors.TryTake(1, administrator))
        {
            _connections.Return(identity.Uid, 1);
            return _plane.Descriptors.Refusal(identity.Uid, administrator);
        }
        return null;
    }

    /// <summary>
    /// Answers a connection over a limit at once and closes it, so that it holds no descriptor while its caller waits:
    /// the refusal stays readable after the close, and the client library reads it as the answer to its request.
    /// </summary>
    private void Refuse(Socket connection, PeerIdentity identity, string refusal)
    {
        var answer = new ControlResponse { Ok = false, Error = new ControlError(ControlProtocol.Errors.TooManySockets, refusal) };
        try
        {
            FdPassing.TrySend((int)connection.Handle, ControlProtocol.Encode(answer), []);
        }
        catch (IOException)
        {
        }
        connection.Dispose();
        _log.Info($"refused a control connection of {identity.ProcessName} (pid {identity.Pid}, uid {identity.Uid}): {refusal}");
    }

    /// <summary>The end of a connection: what it held released, and its place under the user's and the daemon's limits.</summary>
    private async Task ReleaseAsync(ControlSession session)
    {
        try
        {
            await session.EndAsync();
        }
        finally
        {
            _connections.Return(session.Identity.Uid, 1);
            _plane.Descriptors.Return(1, _plane.IsAdministrator(session.Identity));
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
        await _reactor.DisposeAsync();
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
