using System.Net.Sockets;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Client;

/// <summary>
/// A blocking connection to the daemon's control socket: one request, one response, in order. Responses that
/// grant a socket carry its memfd and eventfd as SCM_RIGHTS, which <see cref="Call"/> hands back.
/// Closing it tells the daemon to release every socket made over it. A process's sockets share one
/// (<see cref="Share"/>), so that opening a socket is one round trip, not a connection and a round trip.
/// </summary>
public sealed class ControlChannel : IDisposable
{
    /// <summary>The shared connections, by daemon and by the credentials the daemon saw at connect.</summary>
    private static readonly Dictionary<(string Path, uint Uid, uint Gid), ControlChannel> Shared = new();

    private readonly Socket _socket;
    private readonly object _gate = new();
    private long _nextId = 1;
    /// <summary>Sockets using this shared connection; changed under the <see cref="Shared"/> lock.</summary>
    private int _users;
    private (string Path, uint Uid, uint Gid)? _sharedAs;
    /// <summary>The ready map the first bind brought (and which of the daemon's it is), held for the sockets that follow; under <see cref="_gate"/>.</summary>
    private ReadyMapping? _ready;
    private long _readyId;
    private bool _disposed;
    /// <summary>Closed sockets' memory kept mapped for the next binds, by the closed socket's id; under <see cref="_gate"/>.</summary>
    private readonly Dictionary<long, SharedMemory> _kept = new();

    private ControlChannel(Socket socket, string path)
    {
        _socket = socket;
        Path = path;
    }

    public string Path { get; }

    /// <summary>
    /// The process's connection to the daemon at <paramref name="path"/> for its sockets, connected on first use; give it
    /// back with <see cref="Release"/>. One per effective uid and gid: the daemon fixes a caller's identity when it
    /// connects (SO_PEERCRED), so a process that drops privileges after binding (nginx, memcached -u) opens its later
    /// sockets as who it is then, and the connection of its privileged past closes with the last socket made over it,
    /// as a kernel socket keeps no privilege beyond its own. A connection whose daemon is gone is replaced.
    /// </summary>
    public static ControlChannel Share(string? path = null)
    {
        (string Path, uint Uid, uint Gid) key = (ControlProtocol.ResolveSocketPath(path), Libc.Geteuid(), Libc.Getegid());
        lock (Shared)
        {
            if (Shared.TryGetValue(key, out var channel))
            {
                if (!channel.IsDaemonGone())
                {
                    channel._users++;
                    return channel;
                }
                channel.Unshare(); // its sockets close it as they go; it has none left already
                if (channel._users == 0)
                {
                    channel.Dispose();
                }
            }
            PruneIdleDead();
            var fresh = Connect(key.Path);
            fresh._sharedAs = key;
            fresh._users = 1;
            Shared[key] = fresh;
            return fresh;
        }
    }

    /// <summary>Closes the kept connections no socket uses whose daemon has gone (a test's, a restarted one's).</summary>
    private static void PruneIdleDead()
    {
        foreach (var channel in Shared.Values.Where(channel => channel._users == 0 && channel.IsDaemonGone()).ToList())
        {
            channel.Unshare();
            channel.Dispose();
        }
    }

    /// <summary>No longer the connection Share hands out (under the <see cref="Shared"/> lock).</summary>
    private void Unshare()
    {
        if (_sharedAs is { } key)
        {
            Shared.Remove(key);
            _sharedAs = null;
        }
    }

    /// <summary>
    /// A socket lets go of a connection from <see cref="Share"/>. The last one out closes it unless it is still this
    /// process's current connection (same credentials, daemon there), which stays for the next socket.
    /// </summary>
    public void Release()
    {
        lock (Shared)
        {
            if (--_users > 0)
            {
                return;
            }
            if (_sharedAs is { } key && key.Uid == Libc.Geteuid() && key.Gid == Libc.Getegid() && !IsDaemonGone())
            {
                return;
            }
            Unshare();
            Dispose();
        }
    }

    /// <summary>
    /// Closes a socket made over this connection without waiting for the daemon (which frees its port and memory in a
    /// few hundred µs; waiting cost every close that). The daemon handles a connection's requests in order, so this
    /// process's next bind already finds the port free; another process may find it held for that moment.
    /// </summary>
    public void CloseSocket(long socketId, bool keepMemory = false) =>
        Post(new ControlRequest { Op = ControlProtocol.Ops.Close, SocketId = socketId, KeepMemory = keepMemory ? true : null });

    /// <summary>
    /// Sends a request the daemon answers with nothing (it logs a refusal): for what this process's later requests,
    /// handled in order after it, may rely on without waiting for it (a close, a TCP connect's peer).
    /// </summary>
    public void Post(ControlRequest request)
    {
        lock (_gate)
        {
            request.Id = _nextId++;
            request.NoReply = true;
            try
            {
                _socket.Send(ControlProtocol.Encode(request));
            }
            catch (Exception error) when (error is SocketException or ObjectDisposedException)
            {
                // The daemon is gone, and released everything with the connection.
            }
        }
    }

    /// <summary>Connects to the daemon at <paramref name="path"/> (default: $NORMAN_SOCKET, else /run/norman/norman.sock).</summary>
    public static ControlChannel Connect(string? path = null)
    {
        string resolved = ControlProtocol.ResolveSocketPath(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(resolved));
            return new ControlChannel(socket, resolved);
        }
        catch (SocketException error)
        {
            socket.Dispose();
            string why = error.SocketErrorCode switch
            {
                SocketError.AddressNotAvailable or SocketError.ConnectionRefused when File.Exists(resolved) =>
                    "its socket file exists but nobody listens (a daemon that died?)",
                SocketError.AccessDenied => "permission denied on the socket file",
                _ when !File.Exists(resolved) => "there is no socket file",
                _ => error.Message,
            };
            throw new NormanDaemonUnavailableException(
                $"The Norman daemon is not running at {resolved} ({why}). Start it with `norman up`, " +
                $"or point {ControlProtocol.SocketPathVariable} at the socket of the daemon you started.", error);
        }
    }

    /// <summary>
    /// Sends a request (with <paramref name="sentFds"/> on its first byte, as SCM_RIGHTS) and waits for its response; a
    /// refusal becomes a <see cref="NormanException"/>.
    /// </summary>
    public ControlResponse Call(ControlRequest request, List<int>? receivedFds = null, int[]? sentFds = null)
    {
        lock (_gate)
        {
            request.Id = _nextId++;
            var fds = receivedFds ?? new List<int>();
            ControlResponse response;
            try
            {
                try
                {
                    byte[] message = ControlProtocol.Encode(request);
                    int sent = sentFds is { Length: > 0 } ? FdPassing.TrySend((int)_socket.Handle, message, sentFds) : 0;
                    if (sentFds is { Length: > 0 } && sent == 0)
                    {
                        throw new NormanException("EAGAIN", "The control connection's send buffer is full: answers were left unread.");
                    }
                    _socket.Send(message.AsSpan(sent));
                }
                catch (SocketException)
                {
                    // A daemon that refuses a connection (a limit) answers at once and closes: its answer is still
                    // there to read, and says why. If it is not, the read below fails and says the daemon is gone.
                }
                response = ReadResponse(fds);
            }
            catch (Exception error) when (error is SocketException or IOException or ObjectDisposedException)
            {
                FdPassing.CloseAll(fds);
                throw new NormanDaemonUnavailableException(
                    $"Lost the Norman daemon at {Path} ({error.Message}): it stopped or restarted. Open the socket again once it is back.", error);
            }
            if (receivedFds is null)
            {
                FdPassing.CloseAll(fds);
            }
            if (!response.Ok)
            {
                FdPassing.CloseAll(fds);
                receivedFds?.Clear();
                var refusal = response.Error ?? new ControlError("EIO", "The daemon refused without saying why.");
                throw new NormanException(refusal.Code, refusal.Message);
            }
            return response;
        }
    }

    /// <summary>
    /// A listing that may take several answers (<see cref="ControlResponse.NextCursor"/>): asks for each page in turn and
    /// returns them all. A bounded number of pages, so a daemon that kept saying "more" cannot hold the caller forever.
    /// </summary>
    public List<ControlResponse> CallPages(ControlRequest request, int maxPages = 100_000)
    {
        var pages = new List<ControlResponse>();
        request.Cursor = null;
        for (int page = 0; page < maxPages; page++)
        {
            var response = Call(request);
            pages.Add(response);
            if (response.NextCursor is not { } next)
            {
                return pages;
            }
            request.Cursor = next;
        }
        throw new NormanException("EIO", $"The daemon's listing did not end within {maxPages} pages.");
    }

    private ControlResponse ReadResponse(List<int> fds)
    {
        var prefix = new byte[4];
        ReadExactly(prefix, fds);
        var body = new byte[ControlProtocol.ReadLength(prefix)];
        ReadExactly(body, fds);
        return ControlProtocol.DecodeResponse(body);
    }

    private void ReadExactly(Span<byte> buffer, List<int> fds)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int got = FdPassing.Receive((int)_socket.Handle, buffer[read..], fds);
            if (got == 0)
            {
                throw new IOException("the daemon closed the control connection");
            }
            read += got;
        }
    }

    /// <summary>True once the daemon has closed the connection (it stopped or crashed). Never blocks.</summary>
    public bool IsDaemonGone()
    {
        try
        {
            if (!_socket.Poll(0, SelectMode.SelectRead))
            {
                return false;
            }
            // Readable with nothing to read means end of stream: the daemon sends nothing unasked.
            return _socket.Available == 0;
        }
        catch (Exception error) when (error is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    /// <summary>
    /// The ready map a bind's fourth descriptor brings (and takes the descriptor): mapped at this connection's first
    /// bind, the same one for the rest, until the daemon names another (it made the user's map again after all the
    /// user's sockets had closed). The caller holds a reference to the result and releases it.
    /// </summary>
    internal ReadyMapping AdoptReadyMap(int fd, long id)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return ReadyMapping.Adopt(fd); // the socket's alone
            }
            if (_ready is null || _readyId != id)
            {
                var adopted = ReadyMapping.Adopt(fd);
                _ready?.Release(); // the sockets still on the old map keep it mapped until they close
                _ready = adopted;
                _readyId = id;
            }
            else
            {
                Libc.Close(fd);
            }
            return _ready.Acquire();
        }
    }

    /// <summary>
    /// Keeps a closing socket's memory mapped for a later bind over this connection (the daemon empties it and keeps it
    /// too, if the close says so); false when the connection keeps its most already or is closed: unmap it then.
    /// </summary>
    internal bool TryKeep(long socketId, SharedMemory region)
    {
        lock (_gate)
        {
            if (_disposed || _kept.Count >= ControlProtocol.MaxKeptMemory)
            {
                return false;
            }
            _kept[socketId] = region;
            return true;
        }
    }

    /// <summary>The closed sockets whose memory is kept, for a bind to name; null when none.</summary>
    internal List<long>? KeptMemory()
    {
        lock (_gate)
        {
            return _kept.Count == 0 ? null : [.. _kept.Keys];
        }
    }

    /// <summary>The kept memory a bind's answer reuses, no longer kept; null if this connection does not keep it (a daemon's error).</summary>
    internal SharedMemory? TakeKept(long socketId)
    {
        lock (_gate)
        {
            return _kept.Remove(socketId, out var region) ? region : null;
        }
    }

    /// <summary>Unmaps all kept memory: after a refused bind the daemon has let go of what it took, so both sides start again.</summary>
    internal void ForgetKept()
    {
        lock (_gate)
        {
            foreach (var region in _kept.Values)
            {
                region.Dispose();
            }
            _kept.Clear();
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        lock (_gate)
        {
            _disposed = true;
            _ready?.Release();
            _ready = null;
        }
        ForgetKept();
    }
}
