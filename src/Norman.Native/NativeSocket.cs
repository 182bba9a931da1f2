using System.Net;
using System.Net.Sockets;
using Norman.Client;
using Norman.Client.Tcp;
using Norman.Core.Packets;
using Norman.Core.Shm;

namespace Norman.Native;

/// <summary>
/// One socket of the C API: a UDP socket (<see cref="NormanUdpSocket"/>) or a TCP one, which becomes a listener at
/// listen or a stream at connect or accept, as a BSD socket does. Calls and their errors follow Linux's.
/// </summary>
internal sealed class NativeSocket : IDisposable
{
    private readonly object _gate = new();
    /// <summary>
    /// A UDP socket's pipes are single-producer, single-consumer rings: threads of a program that share one socket (a
    /// server's workers, a dup per thread) take turns at each end. Order: <see cref="_gate"/> before <see cref="_receiveGate"/>.
    /// </summary>
    private readonly object _sendGate = new(), _receiveGate = new();
    private readonly NormanUdpSocket? _udp;
    private IPEndPoint? _tcpBinding;
    private NormanTcpListener? _listener;
    private NormanTcpStream? _stream;
    private bool _readShutDown;
    /// <summary>The descriptor a program polls for this socket (made on first ask: norman_readiness_fd), and the watcher's key for a UDP one.</summary>
    private ReadinessPair? _readiness;
    private ulong _watchKey;
    /// <summary>A non-blocking write found the send buffer full: not writable until room is announced (<see cref="WritableAgain"/>); under <see cref="_sendGate"/>.</summary>
    private volatile bool _writeBlocked;
    /// <summary>A non-blocking connect under way (EINPROGRESS); what the last one failed with, until SO_ERROR or a call takes it.</summary>
    private Task<NormanTcpStream>? _connecting;
    private NormanException? _connectError;
    private bool _disposed;

    private NativeSocket(AddressFamily family, bool nonBlocking, NormanUdpSocket? udp, NormanTcpStream? stream = null)
    {
        Family = family;
        NonBlocking = nonBlocking;
        _udp = udp;
        _stream = stream;
    }

    /// <summary>What a send or receive returns when it would wait on a non-blocking call: no exception on that path, which a polling program takes millions of times.</summary>
    public const int WouldBlock = -1;

    /// <summary>Connections closed by the program whose bytes may still be on their way (see <see cref="Flush"/>).</summary>
    private static readonly ClosingConnections Closing = new();

    /// <summary>
    /// Waits (at most <paramref name="timeout"/>) until every connection the program closed has delivered what was
    /// written to it, FIN included. The kernel keeps sending after close(2) and after the process ends; here the TCP
    /// stack is the process's, so a program that exits right after closing must wait for it: the interposer does at exit.
    /// Returns the connections still undelivered.
    /// </summary>
    public static int Flush(TimeSpan timeout) => Closing.WaitUntilDelivered(timeout);

    public AddressFamily Family { get; }

    /// <summary>IPV6_V6ONLY, before bind: an IPv6 socket on :: leaves IPv4 to another socket on the port.</summary>
    public bool V6Only { get; set; }

    /// <summary>SO_REUSEADDR, before bind: a UDP socket may share its port with another that asked too (Linux's rule).</summary>
    public bool ReuseAddress { get; set; }

    /// <summary>SO_REUSEPORT, before bind: UDP sockets of one user share an address and port (a TCP listener's is accepted and ignored).</summary>
    public bool ReusePort { get; set; }
    /// <summary>SOCK_NONBLOCK (or O_NONBLOCK set later): every call that would wait fails with EAGAIN instead.</summary>
    public bool NonBlocking { get; set; }
    public bool IsTcp => _udp is null;

    /// <summary>A UDP socket connects to the daemon at once, so that a program hears at socket() that none runs.</summary>
    public static NativeSocket Udp(AddressFamily family, bool nonBlocking) =>
        new(family, nonBlocking, new NormanUdpSocket { V6Only = false });

    public static NativeSocket Tcp(AddressFamily family, bool nonBlocking) => new(family, nonBlocking, udp: null);

    /// <summary>
    /// In a process that inherited a TCP listener (fork, exec), a listener of its own on its port; <paramref name="proof"/>
    /// is a descriptor of the inherited listener (<see cref="ListenerDoorbell"/>, or its readiness descriptor): the new
    /// connections come here.
    /// </summary>
    public static NativeSocket InheritListener(AddressFamily family, int proof, bool nonBlocking)
    {
        var socket = new NativeSocket(family, nonBlocking, udp: null);
        lock (socket._gate)
        {
            socket._listener = NormanTcpListener.Inherit(proof);
            socket.FollowTcp();
        }
        return socket;
    }

    /// <summary>In a process that inherited a TCP connection across fork (<paramref name="proof"/>: its descriptor), the connection as its own.</summary>
    public static NativeSocket ClaimConnection(int proof)
    {
        var stream = NormanTcpStream.Claim(proof);
        var family = stream.LocalEndPoint.AddressFamily;
        return new NativeSocket(family, nonBlocking: false, udp: null, stream);
    }

    /// <summary>
    /// The program closes this TCP connection after forking while it was open: children (<paramref name="children"/>:
    /// pidfds, taken) may hold it still, so it is kept for them rather than closed (NormanTcpStream.KeepForChildren),
    /// its descriptor named as the proof a child claims it with. False: not kept (not an accepted connection, or the
    /// daemon refused); the caller closes it as usual.
    /// </summary>
    public bool CloseForChildren(int[] children)
    {
        ReadinessPair readiness;
        lock (_gate)
        {
            if (_stream is not { } stream || _readiness is null)
            {
                Array.ForEach(children, child => Core.Shm.Libc.Close(child));
                return false;
            }
            readiness = _readiness;
            if (!stream.KeepForChildren(children, readiness.Fd)) // it took the pidfds either way
            {
                return false;
            }
            _disposed = true;
        }
        readiness.Dispose();
        return true;
    }

    /// <summary>A listening socket's doorbell descriptor, which a forked child passes to <see cref="InheritListener"/>.</summary>
    public int ListenerDoorbell =>
        (_listener ?? throw new NormanException("EINVAL", "Only a listening TCP socket has a listener to inherit: call listen first.")).DoorbellDescriptor;

    /// <summary>Keeps a listening socket for the program the process execs (false: the exec failed); see NormanTcpListener.KeepAcrossExec.</summary>
    public void KeepAcrossExec(bool keep) =>
        (_listener ?? throw new NormanException("EINVAL", "Only a listening TCP socket is kept across exec.")).KeepAcrossExec(keep);

    public void Bind(IPEndPoint local)
    {
        CheckFamily(local);
        lock (_gate)
        {
            if (_udp is not null)
            {
                _udp.V6Only = V6Only;
                _udp.ReuseAddress = ReuseAddress;
                _udp.ReusePort = ReusePort;
                _udp.Bind(Unmapped(local));
                WatchDatagrams();
                return;
            }
            if (_tcpBinding is not null || _listener is not null || _stream is not null)
            {
                throw new NormanException("EINVAL", "This TCP socket is already bound.");
            }
            // The port is taken at listen, where the daemon binds it (a TCP socket's bind alone holds nothing yet).
            _tcpBinding = Unmapped(local);
        }
    }

    public void Listen(int backlog)
    {
        lock (_gate)
        {
            if (!IsTcp)
            {
                throw new NormanException("EOPNOTSUPP", "listen is for TCP sockets (SOCK_STREAM); this one is UDP.");
            }
            if (_stream is not null)
            {
                throw new NormanException("EINVAL", "This socket is connected; listen on a new one.");
            }
            // Linux clamps the backlog to somaxconn (4096) and takes 0 or less as the least.
            _listener ??= new NormanTcpListener(_tcpBinding ?? Wildcard(), backlog: Math.Clamp(backlog, 1, 4096), v6Only: V6Only, reusePort: ReusePort);
            FollowTcp();
            NameHolder();
        }
    }

    private bool _holderNamed;

    /// <summary>
    /// Once a listener has its readiness descriptor, the descriptor the program holds (a dup of it): the daemon is told,
    /// so that a process that inherits the program's descriptor (fork, exec) may join the listener with it, even where
    /// this library's own descriptors are gone (closed before exec, as subprocess's close_fds does). Called under the gate.
    /// </summary>
    private void NameHolder()
    {
        if (_listener is { } listener && _readiness is { } readiness && !_holderNamed)
        {
            listener.NameHolder(readiness.Fd);
            _holderNamed = true;
        }
    }

    /// <summary>The next connection; null when none waits and the socket is non-blocking.</summary>
    public NativeSocket? Accept()
    {
        var listener = _listener ?? throw new NormanException("EINVAL", "accept needs a listening socket: call listen first.");
        var stream = NonBlocking ? listener.TryAccept() : listener.AcceptAsync().GetAwaiter().GetResult();
        UpdateReadiness();
        // As on Linux, an accepted socket does not inherit O_NONBLOCK.
        return stream is null ? null : new NativeSocket(Family, nonBlocking: false, udp: null, stream);
    }

    public void Connect(IPEndPoint remote)
    {
        CheckFamily(remote);
        if (_udp is not null)
        {
            _udp.Connect(Unmapped(remote));
            WatchDatagrams();
            return;
        }
        lock (_gate)
        {
            if (_connecting is not null)
            {
                throw new NormanException("EALREADY", "A connect is already under way on this socket: wait until it is writable, then read SO_ERROR.");
            }
            if (TakeConnectError() is { } failed)
            {
                throw failed;
            }
            if (_stream is not null)
            {
                throw new NormanException("EISCONN", "This socket is already connected.");
            }
            if (_listener is not null)
            {
                throw new NormanException("EISCONN", "A listening socket cannot connect: open another socket to connect from.");
            }
            // From the address and port a bind chose, if any (the daemon takes the port now, as Linux's bind had).
            var connecting = NormanTcpStream.ConnectAsync(Unmapped(remote), TcpCongestionControl.Cubic, localEndPoint: _tcpBinding);
            // A connect that failed already (no daemon, no route, a refusal that beat us) says so now. One whose
            // handshake beat us is still EINPROGRESS, as Linux's always is: the program's next poll finds it writable.
            if (!NonBlocking || connecting.IsFaulted)
            {
                _stream = connecting.GetAwaiter().GetResult();
                FollowTcp();
                return;
            }
            // As Linux's: EINPROGRESS now; the socket is not writable until the handshake ends, then writable (and
            // readable too if it failed), and SO_ERROR says how it went.
            _connecting = connecting;
            _readiness?.MarkUnwritable();
            connecting.ContinueWith(ConnectEnded, TaskScheduler.Default);
            throw new NormanException("EINPROGRESS", $"Connecting to {remote}: the socket becomes writable when the handshake ends; SO_ERROR then says how it went.");
        }
    }

    /// <summary>A non-blocking connect's handshake ended: the stream is the socket's, or the error waits for SO_ERROR.</summary>
    private void ConnectEnded(Task<NormanTcpStream> connecting)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_connecting, connecting))
            {
                return; // taken already (a blocking call waited for it)
            }
            _connecting = null;
            if (connecting.IsCompletedSuccessfully)
            {
                if (_disposed)
                {
                    connecting.Result.Dispose(); // the program closed the socket while it connected
                    return;
                }
                _stream = connecting.Result;
            }
            else
            {
                _connectError = connecting.Exception?.InnerException as NormanException
                    ?? new NormanException("ECONNABORTED", $"The connect failed: {connecting.Exception?.InnerException?.Message}");
            }
            if (_readiness is { } readiness && !_disposed)
            {
                readiness.MarkWritable(); // the edge EPOLLOUT waiters wait for
                if (_connectError is not null)
                {
                    readiness.MarkReadable(); // and readable, as a socket with an error is
                }
            }
            FollowTcp();
        }
    }

    /// <summary>FIONREAD: a TCP socket's bytes received and not read; a UDP socket's next datagram's length (0 when none).</summary>
    public int ReadableBytes()
    {
        if (_udp is not null)
        {
            lock (_receiveGate)
            {
                return _udp.IsBound && _udp.TryPeek(out var datagram) ? datagram.Payload.Length : 0;
            }
        }
        return _stream?.Available ?? 0;
    }

    /// <summary>SO_ERROR: what the last non-blocking connect failed with, as an errno, taken (0 when none).</summary>
    public int TakeSocketError()
    {
        lock (_gate)
        {
            return TakeConnectError() is { } failed ? Errno.Of(failed.Code) : 0;
        }
    }

    private NormanException? TakeConnectError()
    {
        var failed = _connectError;
        _connectError = null;
        return failed;
    }

    public int Send(ReadOnlySpan<byte> data, bool wait, IPEndPoint? destination)
    {
        wait &= !NonBlocking;
        if (_udp is not null)
        {
            if (destination is null)
            {
                var remote = _udp.RemoteEndPoint ?? throw new NormanException("EDESTADDRREQ", "This UDP socket is not connected: give a destination (sendto), or connect first.");
                destination = remote;
            }
            CheckFamily(destination);
            if (!_udp.IsBound)
            {
                Bind(new IPEndPoint(Family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));
            }
            var to = Unmapped(destination);
            lock (_sendGate)
            {
                if (wait)
                {
                    _udp.SendTo(data, to);
                    return data.Length;
                }
                if (_udp.TrySendTo(data, Norman.Core.Packets.NetAddress.From(to.Address), (ushort)to.Port))
                {
                    return data.Length;
                }
                // Full: not writable until the daemon wakes the socket once half the pipe is free, and the watcher
                // announces it (EPOLLOUT).
                BlockWrites();
                if (!_udp.AskForTxRoom())
                {
                    WritableAgain(); // the dataplane freed half of it between the send and the request
                }
            }
            return WouldBlock;
        }
        var stream = Connected();
        if (destination is not null)
        {
            throw new NormanException("EISCONN", "A TCP socket sends to its peer: use send, or sendto without an address.");
        }
        if (!wait)
        {
            int written = stream.TryWrite(data);
            if (written < data.Length)
            {
                lock (_sendGate)
                {
                    BlockWrites();
                    if (stream.IsWritable)
                    {
                        WritableAgain(); // room came between the write and the flag: say so now
                    }
                }
            }
            return written > 0 || data.IsEmpty ? written : WouldBlock;
        }
        stream.Write(data);
        return data.Length;
    }

    /// <summary>Bytes received, or <see cref="WouldBlock"/>; <paramref name="source"/> is a datagram's sender (null on TCP).</summary>
    public int Receive(Span<byte> buffer, bool wait, bool peek, bool truncatedLength, out (NetAddress Address, ushort Port)? source)
    {
        wait &= !NonBlocking;
        if (_udp is not null)
        {
            return ReceiveDatagram(buffer, wait, peek, truncatedLength, out source);
        }
        source = null;
        if (truncatedLength)
        {
            return Discard(buffer.Length, wait, peek); // the buffer is not written, as Linux's MSG_TRUNC on TCP
        }
        return ReceiveStream(buffer, wait, peek);
    }

    /// <summary>A TCP receive (or peek) into <paramref name="buffer"/>; <paramref name="wait"/> already says whether it may.</summary>
    private int ReceiveStream(Span<byte> buffer, bool wait, bool peek)
    {
        var stream = Connected();
        if (_readShutDown)
        {
            return 0;
        }
        if (peek)
        {
            int peeked;
            while ((peeked = stream.TryPeek(buffer)) < 0 && wait)
            {
                WaitReadable(ReadinessDescriptor(), -1); // the protocol thread signals it when bytes or the FIN come
            }
            return peeked >= 0 ? peeked : WouldBlock;
        }
        int read = wait ? stream.Read(buffer) : stream.TryRead(buffer);
        UpdateReadiness();
        return read >= 0 ? read : WouldBlock;
    }

    /// <summary>
    /// TCP's MSG_TRUNC: takes up to <paramref name="length"/> bytes (64 KiB a call) and throws them away, or with
    /// <paramref name="peek"/> says how many there are without taking them; the program's buffer, which may be NULL,
    /// is never touched.
    /// </summary>
    public int Discard(int length, bool wait, bool peek)
    {
        if (length == 0)
        {
            Connected();
            return 0;
        }
        byte[] scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Min(length, 64 * 1024));
        try
        {
            return ReceiveStream(scratch.AsSpan(0, Math.Min(length, scratch.Length)), wait && !NonBlocking, peek);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private int ReceiveDatagram(Span<byte> buffer, bool wait, bool peek, bool truncatedLength, out (NetAddress Address, ushort Port)? source)
    {
        var udp = _udp!;
        if (!udp.IsBound)
        {
            throw new NormanException("EINVAL", "This UDP socket is not bound: bind it (or send from it) before receiving.");
        }
        source = null;
        while (true)
        {
            lock (_receiveGate)
            {
                if (udp.TryPeek(out var datagram))
                {
                    int length = Math.Min(buffer.Length, datagram.Payload.Length);
                    datagram.Payload[..length].CopyTo(buffer);
                    source = (datagram.Source, datagram.SourcePort);
                    int whole = datagram.Payload.Length;
                    if (!peek)
                    {
                        udp.Release();
                        UpdateReadiness();
                    }
                    return truncatedLength ? whole : length;
                }
                UpdateReadiness();
            }
            if (!wait)
            {
                return WouldBlock;
            }
            // Wait for the daemon's wake-up itself (one hand-off: sockperf's blocking server had two through the watcher
            // thread) or the readiness descriptor (another thread's news); several threads may wait on one socket, and
            // none touches the ring outside the lock.
            WaitReadable(ReadinessDescriptor(), udp.WakeupDescriptor);
        }
    }

    public void Shutdown(int how)
    {
        var stream = IsTcp ? Connected() : throw new NormanException("ENOTCONN", "shutdown is for connected TCP sockets.");
        switch (how)
        {
            case 0: // SHUT_RD
                _readShutDown = true;
                break;
            case 1: // SHUT_WR
                stream.ShutdownSend();
                break;
            case 2: // SHUT_RDWR
                _readShutDown = true;
                stream.ShutdownSend();
                break;
            default:
                throw new NormanException("EINVAL", $"shutdown's how is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2), not {how}.");
        }
    }

    public IPEndPoint LocalEndPoint =>
        _udp?.LocalEndPoint ?? _stream?.LocalEndPoint ?? _listener?.LocalEndPoint ?? _tcpBinding ?? Wildcard();

    public IPEndPoint RemoteEndPoint =>
        (_udp is not null ? _udp.RemoteEndPoint : _stream?.RemoteEndPoint)
        ?? throw new NormanException("ENOTCONN", "This socket is not connected.");

    /// <summary>
    /// The descriptor that is readable exactly while this socket is (a datagram or bytes to read, a connection to accept,
    /// the peer's FIN, an error), and writable exactly while a send would not wait: what a program polls. Made on first
    /// ask, owned by the socket.
    /// </summary>
    public int ReadinessDescriptor()
    {
        lock (_gate)
        {
            if (_readiness is null)
            {
                _readiness = ReadinessPair.Create();
                if (_connecting is not null || _writeBlocked)
                {
                    _readiness.MarkUnwritable();
                }
                WatchDatagrams();
                FollowTcp();
                NameHolder();
            }
            UpdateReadiness();
            return _readiness.Fd;
        }
    }

    /// <summary>
    /// The watcher thread saw the daemon wake this UDP socket: a datagram arrived, or the TX pipe a send found full has
    /// room again, which is announced as the edge EPOLLOUT waiters wait for (and readable too, if it is).
    /// </summary>
    public void OnDaemonWakeup()
    {
        _udp?.TakeWakeup();
        if (_writeBlocked && _udp is { } udp)
        {
            lock (_sendGate)
            {
                if (_writeBlocked && udp.HasTxRoom())
                {
                    WritableAgain();
                    if (IsReadable())
                    {
                        _readiness?.MarkReadable();
                    }
                    return;
                }
            }
        }
        _readiness?.MarkReadable();
    }

    /// <summary>A bound UDP socket with readiness asked for: the watcher takes the daemon's wake-ups for it.</summary>
    private void WatchDatagrams()
    {
        if (_readiness is not null && _udp is { IsBound: true } udp && _watchKey == 0)
        {
            _watchKey = ReadinessWatcher.Watch(this, udp.WakeupDescriptor);
            UpdateReadiness(); // asks the daemon for the first wake-up
        }
    }

    /// <summary>A TCP listener or connection with readiness asked for: its protocol thread marks it readable.</summary>
    private void FollowTcp()
    {
        if (_readiness is not { } readiness)
        {
            return;
        }
        if (_listener is { } listener)
        {
            listener.ConnectionQueued = readiness.MarkReadable;
        }
        if (_stream is { } stream)
        {
            stream.ReadinessChanged = () =>
            {
                if (stream.IsReadable)
                {
                    readiness.MarkReadable();
                }
                if (_writeBlocked && stream.IsWritable)
                {
                    lock (_sendGate)
                    {
                        if (_writeBlocked && stream.IsWritable)
                        {
                            WritableAgain();
                        }
                    }
                }
            };
        }
        UpdateReadiness(); // what arrived before the hooks were set
    }

    /// <summary>
    /// After a receive or accept (or when one found nothing): the readiness descriptor is cleared when nothing is left,
    /// then set again if something came meanwhile. For UDP the daemon is asked to wake the socket at the next datagram;
    /// a datagram that beat the request is seen by the second look. The protocol thread or the watcher only ever sets it.
    /// </summary>
    private void UpdateReadiness()
    {
        if (_readiness is not { } readiness || _connecting is not null)
        {
            return; // while connecting it stays blocked: not writable until the handshake ends
        }
        lock (_receiveGate)
        {
            if (IsReadable())
            {
                readiness.MarkReadable();
                return;
            }
            readiness.MarkUnreadable();
            if (IsReadable() || _udp is { IsBound: true } udp && !udp.ArmWakeup())
            {
                readiness.MarkReadable();
            }
        }
    }

    /// <summary>A non-blocking write found the send buffer full (under <see cref="_sendGate"/>): not writable from now.</summary>
    private void BlockWrites()
    {
        _writeBlocked = true;
        _readiness?.MarkUnwritable();
    }

    /// <summary>
    /// The send buffer has room again after a write found it full (under <see cref="_sendGate"/>): writable from now,
    /// which is the one edge an edge-triggered epoll (nginx's) waits for, and what poll's POLLOUT then says.
    /// </summary>
    private void WritableAgain()
    {
        _writeBlocked = false;
        _readiness?.MarkWritable();
    }

    private bool IsReadable() =>
        _udp is not null ? _udp.IsBound && _udp.TryPeek(out _)
        : _stream is not null ? _stream.IsReadable || _readShutDown
        : _listener is not null && _listener.HasConnectionWaiting;

    /// <summary>A bound UDP socket's descriptor the daemon signals (a datagram, or room after a full pipe); -1 otherwise.</summary>
    public int DaemonWakeupDescriptor => _udp is { IsBound: true } udp ? udp.WakeupDescriptor : -1;

    private static unsafe void WaitReadable(int readiness, int daemonWakeup)
    {
        var polls = stackalloc Libc.PollFd[2];
        polls[0] = new Libc.PollFd { Fd = readiness, Events = Libc.POLLIN };
        polls[1] = new Libc.PollFd { Fd = daemonWakeup, Events = Libc.POLLIN };
        Libc.Poll(polls, 2, -1);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }
        if (_stream is { } closing)
        {
            Closing.Add(closing);
        }
        if (_watchKey != 0)
        {
            ReadinessWatcher.Unwatch(_watchKey, _udp!.WakeupDescriptor);
        }
        _readiness?.Dispose();
        _udp?.Dispose();
        _listener?.Dispose();
        _stream?.Dispose();
    }

    /// <summary>
    /// The connection to send or receive on. While a non-blocking connect is under way a non-blocking call would wait
    /// (EAGAIN) and a blocking one waits for it, as on Linux; after a failed one its error comes once.
    /// </summary>
    private NormanTcpStream Connected()
    {
        if (_stream is { } stream)
        {
            return stream;
        }
        if (_connecting is { } connecting)
        {
            if (NonBlocking)
            {
                throw new NormanException("EAGAIN", "The socket is still connecting: wait until it is writable.");
            }
            ((IAsyncResult)connecting).AsyncWaitHandle.WaitOne();
            ConnectEnded(connecting); // if its continuation has not yet run
            return Connected();
        }
        lock (_gate)
        {
            if (TakeConnectError() is { } failed)
            {
                throw failed;
            }
        }
        throw new NormanException("ENOTCONN", _listener is null ? "This TCP socket is not connected: connect (or accept) first." : "A listening socket carries no data: accept a connection.");
    }

    private IPEndPoint Wildcard() => new(Family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);

    private void CheckFamily(IPEndPoint endPoint)
    {
        if (Family == AddressFamily.InterNetwork && endPoint.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new NormanException("EAFNOSUPPORT", $"{endPoint} is an IPv6 address and this is an AF_INET socket: open it as AF_INET6.");
        }
    }

    /// <summary>An IPv4 peer given v4-mapped on an IPv6 socket is the IPv4 peer itself to Norman.</summary>
    private static IPEndPoint Unmapped(IPEndPoint endPoint) =>
        endPoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port) : endPoint;
}
