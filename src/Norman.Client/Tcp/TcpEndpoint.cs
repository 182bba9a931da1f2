using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Client.Tcp;

/// <summary>
/// A TCP socket at the daemon — one pipe pair, a listener's or a client connection's — and the thread that runs
/// the TCP protocol over it for every connection it carries: segments in from the RX pipe, timers about once a
/// millisecond, segments out into the TX pipe, one publication per turn. No thread per connection. It sleeps on the
/// socket's eventfd when idle, which both the daemon (a segment arrived) and application threads (bytes to send)
/// signal. It ends once nothing holds it and its connections are done.
/// </summary>
internal sealed unsafe partial class TcpEndpoint : ITcpCarrier, IDisposable
{
    /// <summary>How often the connections are reported to the daemon for `norman ss`.</summary>
    private static readonly long ReportTicks = Stopwatch.Frequency / 10;
    private static readonly long TimerTicks = Stopwatch.Frequency / 1000;
    /// <summary>How long connections may finish (FIN exchanges) once the application let go of everything.</summary>
    private static readonly long OrphanTicks = Stopwatch.Frequency * 60;

    private readonly ControlChannel _control;
    private readonly SocketPipes _pipes;
    private readonly Dictionary<(NetAddress Address, ushort Port), TcpConnection> _connections = new();
    private readonly HashSet<TcpConnection> _timed = new();
    private readonly List<TcpConnection> _timedNow = new();
    private readonly ConcurrentQueue<TcpConnection> _ready = new();
    private readonly ConcurrentQueue<TcpConnection> _opening = new();
    /// <summary>Work an application thread asks of the loop thread (<see cref="RunOnLoop"/>).</summary>
    private readonly ConcurrentQueue<Action> _chores = new();
    private readonly Channel<TcpConnection>? _acceptQueue;
    private readonly int _backlog;
    private readonly ProtocolThreads.Loop _loop;
    private int _halfOpen;
    /// <summary>Half-open connections, oldest first: the first to go when a SYN flood fills the backlog.</summary>
    private readonly LinkedList<TcpConnection> _halfOpenOrder = new();
    private int _holders = 1;
    private volatile bool _listening;
    private volatile bool _stopping;
    private long _orphanedAt;
    private readonly ChallengeAckBudget _challengeAcks = new();
    /// <summary>How application threads wake this endpoint's loop (the doorbell is the daemon's line, not ours).</summary>
    private readonly EventFd _nudge = EventFd.Create();
    /// <summary>What connections that are gone had counted, for the socket's totals.</summary>
    private long _closedChallengeAcks, _closedResetsIgnored;

    private TcpEndpoint(ControlChannel control, SocketPipes pipes, int backlog, TcpCongestionControl congestionControl,
        List<HandedOverConnection>? handedOver = null)
    {
        CongestionControl = congestionControl;
        _control = control;
        _pipes = pipes;
        _backlog = backlog;
        if (backlog > 0)
        {
            _acceptQueue = Channel.CreateUnbounded<TcpConnection>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });
            _listening = true;
            _joinedSeen = Volatile.Read(ref *JoinedWord); // memory kept from a closed socket keeps its header page
            _connectionWantedSeen = Volatile.Read(ref *ConnectionWantedWord);
            foreach (var handed in (handedOver ?? []).Take(HandedOverConnection.MaxConnections))
            {
                TakeUp(handed);
            }
        }
        _loop = ProtocolThreads.Start(Run, $"norman tcp :{pipes.LocalEndPoint.Port}");
    }

    public IPEndPoint LocalEndPoint => _pipes.LocalEndPoint;

    public NetAddress LocalAddressFor(NetAddress remote) => _pipes.SourceFor(remote);

    public ushort LocalPort => (ushort)_pipes.LocalEndPoint.Port;

    /// <summary>
    /// The most a connection advertises: half of what the RX pipe holds in full segments. A window past the pipe lets a
    /// sender put more in flight than the pipe can take between two turns of this thread, and the daemon drops the
    /// rest (rx_pipe_full) as a NIC's full ring would: a loss for every burst.
    /// </summary>
    public TcpCongestionControl CongestionControl { get; }

    public long Now => Stopwatch.GetTimestamp();

    public int WindowCap => Math.Max(TcpConnection.OurMss, _pipes.Rx.SlotCount / 2 * TcpConnection.OurMss);

    /// <summary>
    /// A listening endpoint: SYNs to <paramref name="endPoint"/> become connections, up to <paramref name="backlog"/>
    /// waiting to be accepted. With <paramref name="reusePort"/> it may share the port with its user's other listeners
    /// that asked too, the connections spread over them (SO_REUSEPORT).
    /// </summary>
    public static TcpEndpoint Listen(string? controlSocketPath, IPEndPoint endPoint, int backlog, int? slotCount,
        TcpCongestionControl congestionControl = TcpCongestionControl.Cubic, bool v6Only = false, bool reusePort = false)
    {
        var control = ControlChannel.Share(controlSocketPath);
        SocketPipes? pipes = null;
        try
        {
            pipes = SocketPipes.Bind(control, "tcp", endPoint, slotCount, v6Only, reusePort: reusePort);
            return new TcpEndpoint(control, pipes, Math.Max(1, backlog), congestionControl);
        }
        catch
        {
            pipes?.Close(control);
            control.Release();
            throw;
        }
    }

    /// <summary>
    /// A listening endpoint of this process's own on the port of a TCP listener it inherited (fork, exec; proved by
    /// <paramref name="proof"/>, see <see cref="SocketPipes.Inherit"/>): new connections come here, with those the
    /// inherited listener had made and not accepted.
    /// </summary>
    public static TcpEndpoint Inherit(string? controlSocketPath, int proof, int backlog,
        TcpCongestionControl congestionControl = TcpCongestionControl.Cubic)
    {
        var control = ControlChannel.Share(controlSocketPath);
        SocketPipes? pipes = null;
        try
        {
            pipes = SocketPipes.Inherit(control, proof, out var handedOver);
            return new TcpEndpoint(control, pipes, Math.Max(1, backlog), congestionControl, handedOver);
        }
        catch
        {
            pipes?.Close(control);
            control.Release();
            throw;
        }
    }

    /// <summary>The doorbell descriptor of this endpoint's socket: what a forked child passes to <see cref="Inherit"/>.</summary>
    public int DoorbellDescriptor => _pipes.Doorbell.Fd;

    /// <summary>
    /// A client endpoint on a free port (or on <paramref name="local"/>, bound before connect), connected at the daemon
    /// to <paramref name="remote"/>, opening one connection.
    /// </summary>
    public static (TcpEndpoint Endpoint, TcpConnection Connection) Connect(string? controlSocketPath, IPEndPoint remote, int? slotCount,
        TcpCongestionControl congestionControl = TcpCongestionControl.Cubic, IPEndPoint? local = null)
    {
        var control = ControlChannel.Share(controlSocketPath);
        SocketPipes? pipes = null;
        try
        {
            var any = remote.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !remote.Address.IsIPv4MappedToIPv6
                ? IPAddress.IPv6Any : IPAddress.Any;
            pipes = SocketPipes.Bind(control, "tcp", local ?? new IPEndPoint(any, 0), slotCount);
            pipes.ConnectWithoutWaiting(control, remote); // a control round trip less (a tenth of a connect)
            var endpoint = new TcpEndpoint(control, pipes, 0, congestionControl);
            var connection = new TcpConnection(endpoint, NetAddress.From(remote.Address), (ushort)remote.Port);
            endpoint._opening.Enqueue(connection);
            endpoint._nudge.Signal();
            return (endpoint, connection);
        }
        catch
        {
            pipes?.Close(control);
            control.Release();
            throw;
        }
    }

    public ValueTask<TcpConnection> AcceptAsync(CancellationToken cancellation) => AcceptQueue.ReadAsync(cancellation);

    /// <summary>An established connection if one waits, without waiting (a non-blocking accept).</summary>
    public bool TryAccept([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out TcpConnection? connection) => AcceptQueue.TryRead(out connection);

    private ChannelReader<TcpConnection> AcceptQueue =>
        (_acceptQueue ?? throw new InvalidOperationException("Not a listening endpoint.")).Reader;

    /// <summary>Another holder (an accepted connection's stream) keeps the endpoint alive.</summary>
    public void Hold() => Interlocked.Increment(ref _holders);

    /// <summary>A holder let go; with none left, the endpoint ends once its connections are done.</summary>
    public void Release()
    {
        Interlocked.Decrement(ref _holders);
        _nudge.Signal();
    }

    /// <summary>
    /// Tells the daemon which descriptor the program holds this listener by (one that may be inherited, where this
    /// endpoint's own are close-on-exec): a process that inherits it proves with it that it holds the listener (<see cref="Inherit"/>).
    /// </summary>
    public void NameHolder(int descriptor) =>
        _control.Call(new ControlRequest { Op = ControlProtocol.Ops.ListenerHolder, SocketId = _pipes.SocketId }, sentFds: [descriptor]);

    /// <summary>
    /// Marks this listener to stay when the process execs (and its connection to the daemon closes), for the program it
    /// becomes to join (<see cref="Inherit"/>); <paramref name="keep"/> false takes the mark back (the exec failed).
    /// </summary>
    public void KeepAcrossExec(bool keep)
    {
        if (!keep)
        {
            RunOnLoop(TakeBack);
            _control.Call(new ControlRequest { Op = ControlProtocol.Ops.KeepAcrossExec, SocketId = _pipes.SocketId, Keep = false });
            return;
        }
        var handedOver = _acceptQueue is null ? null : RunOnLoop(HandOver);
        try
        {
            _control.Call(new ControlRequest { Op = ControlProtocol.Ops.KeepAcrossExec, SocketId = _pipes.SocketId, Keep = true, HandedOver = handedOver });
        }
        catch
        {
            RunOnLoop(TakeBack);
            throw;
        }
    }

    /// <summary>
    /// Stops accepting: later SYNs are answered with a reset; connections already made go on. The daemon is told, so
    /// that in a reuseport group the other listeners take the new connections.
    /// </summary>
    public void StopListening()
    {
        _listening = false;
        _control.Post(new ControlRequest { Op = ControlProtocol.Ops.StopListening, SocketId = _pipes.SocketId });
        _acceptQueue?.Writer.TryComplete();
        Release();
    }

    // ---------------- Called by connections (the loop thread, except Wake) ----------------

    /// <summary>An application thread asks the loop to serve a connection (bytes to send, FIN, a window update).</summary>
    public void Wake(TcpConnection connection)
    {
        if (connection.MarkQueued())
        {
            _ready.Enqueue(connection);
            _nudge.Signal();
        }
    }

    public void Timed(TcpConnection connection) => _timed.Add(connection);

    public void Accepted(TcpConnection connection)
    {
        _halfOpen--;
        connection.WasHalfOpen = false;
        LeaveHalfOpen(connection);
        _acceptQueue?.Writer.TryWrite(connection);
        ConnectionQueued?.Invoke();
    }

    /// <summary>Called (on the protocol thread) when a connection joins the accept queue: libnorman's readiness.</summary>
    internal Action? ConnectionQueued { get; set; }

    /// <summary>An accept would not wait.</summary>
    internal bool HasConnectionWaiting => _acceptQueue is { } queue && queue.Reader.Count > 0;

    public void Forget(TcpConnection connection)
    {
        _closedChallengeAcks += connection.ChallengeAcks;
        _closedResetsIgnored += connection.ResetsIgnored;
        if (_connections.Remove((connection.RemoteAddress, connection.RemotePort)) && connection.WasHalfOpen)
        {
            _halfOpen--;
            LeaveHalfOpen(connection);
        }
        _timed.Remove(connection);
    }

    private void LeaveHalfOpen(TcpConnection connection)
    {
        if (connection.HalfOpenNode is { } node)
        {
            _halfOpenOrder.Remove(node);
            connection.HalfOpenNode = null;
        }
    }

    public bool TakeChallengeAck(long now) => _challengeAcks.Take(now);

    /// <summary>Puts a segment into the TX pipe: headers, options, then payload bytes from the connection's send buffer.</summary>
    public bool Transmit(TcpConnection connection, TcpSegmentFields fields, ReadOnlySpan<byte> options, int payloadOffset, int payloadLength) =>
        Transmit(connection.LocalAddress, connection.RemoteAddress, connection.RemotePort, fields, options, connection, payloadOffset, payloadLength);

    private bool Transmit(NetAddress source, NetAddress remote, ushort remotePort, TcpSegmentFields fields, ReadOnlySpan<byte> options,
        TcpConnection? payloadFrom, int payloadOffset, int payloadLength)
    {
        var slot = _pipes.Tx.Claim();
        if (slot.IsEmpty)
        {
            _pipes.PublishTx(); // full of what this turn wrote: let the daemon have it
            return false;
        }
        int headerLength = source.IsV4 ? TcpSegmentBuilder.HeaderLength : TcpSegmentBuilder.HeaderLengthV6;
        payloadFrom?.CopyPayload(payloadOffset, slot.Slice(headerLength + options.Length, payloadLength));
        _pipes.Tx.Commit(TcpSegmentBuilder.Write(slot, source, (ushort)LocalEndPoint.Port, remote, remotePort, fields, options,
            payloadLength, payloadFrom?.NextIdentification() ?? 0));
        return true;
    }

    // ---------------- The loop ----------------

    private void Run()
    {
        var waiter = new PipeWaiter(Stopwatch.GetTimestamp());
        long nextTimers = 0;
        long nextReport = 0;
        try
        {
            while (!_stopping)
            {
                long now = Stopwatch.GetTimestamp();
                bool worked = ReceiveSegments(now);
                if (_acceptQueue is not null)
                {
                    HandOverQueueIfJoined();
                    HandOverConnectionIfWanted();
                }
                while (_chores.TryDequeue(out var chore))
                {
                    chore();
                    worked = true;
                }
                while (_opening.TryDequeue(out var opening))
                {
                    _connections[(opening.RemoteAddress, opening.RemotePort)] = opening;
                    opening.Open(now);
                    worked = true;
                }
                // Only those queued before this turn: one whose segment found the TX pipe full queues itself again,
                // and must wait for the pipe to drain, not spin here.
                for (int ready = _ready.Count; ready > 0 && _ready.TryDequeue(out var connection); ready--)
                {
                    connection.UnmarkQueued();
                    connection.Service(now);
                    worked = true;
                }
                if (now >= nextTimers)
                {
                    RunTimers(now);
                    nextTimers = now + TimerTicks;
                }
                if (now >= nextReport)
                {
                    if (_keptForChildren.Count > 0)
                    {
                        CloseConnectionsNoChildHolds();
                    }
                    ReportConnections();
                    nextReport = now + ReportTicks;
                }
                _pipes.PublishTx();
                if (IsDone(now))
                {
                    break;
                }
                if (worked)
                {
                    waiter.Worked(now);
                    continue;
                }
                if (waiter.Spin(now))
                {
                    continue;
                }
                // Idle: sleep until a segment or an application's request, or the next timer.
                if (_pipes.Rx.PrepareToSleep() && _ready.IsEmpty && _opening.IsEmpty && _chores.IsEmpty)
                {
                    _pipes.Wakeup.Wait(_nudge, _timed.Count > 0 ? 1 : 100);
                }
            }
        }
        catch (NormanException)
        {
            // The daemon went away under us: the connections' next calls say so.
        }
        finally
        {
            foreach (var connection in _connections.Values.ToList())
            {
                connection.Abandon();
            }
            _acceptQueue?.Writer.TryComplete();
            _pipes.Close(_control);
            _control.Release();
            _nudge.Dispose();
        }
    }

    private bool IsDone(long now)
    {
        if (Volatile.Read(ref _holders) > 0)
        {
            _orphanedAt = 0;
            return false;
        }
        bool finished = true;
        foreach (var connection in _connections.Values)
        {
            finished &= connection.State is TcpState.Closed or TcpState.TimeWait;
        }
        if (finished)
        {
            return true;
        }
        _orphanedAt = _orphanedAt == 0 ? now : _orphanedAt;
        return now - _orphanedAt > OrphanTicks;
    }

    /// <summary>Writes every connection's state and queues into the socket's connection table (what `norman ss` lists).</summary>
    private void ReportConnections()
    {
        byte* table = _pipes.ConnectionTableAddress;
        if (table == null)
        {
            return;
        }
        int count = 0;
        long challengeAcks = _closedChallengeAcks, resetsIgnored = _closedResetsIgnored;
        foreach (var connection in _connections.Values)
        {
            challengeAcks += connection.ChallengeAcks;
            resetsIgnored += connection.ResetsIgnored;
            if (count < ConnectionTable.Capacity)
            {
                ConnectionTable.Write(table, count++, connection.Report());
            }
        }
        ConnectionTable.WriteTotals(table, (ulong)challengeAcks, (ulong)resetsIgnored);
        ConnectionTable.Publish(table, count);
    }

    private bool ReceiveSegments(long now)
    {
        var rx = _pipes.Rx;
        int handled = 0;
        while (handled < 256 && rx.Available() > 0)
        {
            OnPacket(rx.Peek(), now);
            rx.Advance();
            handled++;
        }
        if (handled > 0)
        {
            rx.Publish();
        }
        return handled > 0;
    }

    private void RunTimers(long now)
    {
        if (_timed.Count == 0)
        {
            return;
        }
        _timedNow.Clear();
        _timedNow.AddRange(_timed);
        foreach (var connection in _timedNow)
        {
            if (!connection.HasTimers)
            {
                _timed.Remove(connection);
                continue;
            }
            connection.OnTimers(now);
        }
    }

    /// <summary>One IP packet from the RX pipe: the daemon checked it is well formed TCP for us, with a good checksum.</summary>
    private void OnPacket(ReadOnlySpan<byte> packet, long now)
    {
        if (packet.Length < TcpSegmentBuilder.HeaderLength)
        {
            return;
        }
        NetAddress remote, local;
        ReadOnlySpan<byte> tcp;
        if (packet[0] >> 4 == 6)
        {
            if (PacketParser.ParseIpPacket(packet, out var parsed) != ParseError.None || parsed.IsFragment)
            {
                return;
            }
            if (parsed.Kind == PacketKind.IcmpV6)
            {
                OnIcmpv6Error(packet, parsed, now);
                return;
            }
            if (parsed.Kind != PacketKind.Tcp)
            {
                return;
            }
            remote = parsed.Source;
            local = parsed.Destination;
            tcp = packet[parsed.TransportOffset..parsed.PacketEnd];
        }
        else
        {
            ref readonly var ip = ref Ipv4Header.At(packet);
            int ipLength = ip.HeaderLength;
            int total = Math.Min(ip.TotalLength, packet.Length);
            if (ip.Version != 4 || ip.Protocol != IpProtocols.Tcp || ipLength < Ipv4Header.Size || total < ipLength + TcpHeader.Size)
            {
                return;
            }
            remote = NetAddress.FromV4(ip.Source);
            local = NetAddress.FromV4(ip.Destination);
            tcp = packet[ipLength..total];
        }
        ref readonly var header = ref TcpHeader.At(tcp);
        int tcpLength = header.HeaderLength;
        if (tcpLength < TcpHeader.Size || tcpLength > tcp.Length)
        {
            return;
        }
        ushort remotePort = header.SourcePort;
        byte flags = header.Flags;
        var offered = tcpLength > TcpHeader.Size ? TcpOptions.Read(tcp[TcpHeader.Size..tcpLength]) : default;
        bool syn = (flags & TcpHeader.Syn) != 0;
        ushort mss = syn ? offered.Mss ?? 0 : (ushort)0;
        int windowScale = syn ? offered.WindowScale ?? -1 : -1;
        var segment = new TcpSegment
        {
            Sequence = header.Sequence,
            Acknowledgement = header.Acknowledgement,
            Flags = flags,
            Window = header.Window,
            Payload = tcp[tcpLength..],
            Mss = mss,
            WindowScale = windowScale,
            SackPermitted = syn && offered.SackPermitted,
            Options = tcp[TcpHeader.Size..tcpLength],
            HasTimestamps = offered.HasTimestamps,
            TimestampValue = offered.TimestampValue,
            TimestampEcho = offered.TimestampEcho,
        };
        if (_connections.TryGetValue((remote, remotePort), out var connection))
        {
            connection.OnSegment(segment, now);
            return;
        }
        if (_handingOver || _handedAway.Contains((remote, remotePort)))
        {
            return; // handed over (about to exec, or to a joiner): a new SYN comes again to the next listener, the connections' segments too
        }
        if (segment.Has(TcpHeader.Syn) && !segment.Has(TcpHeader.Ack) && !segment.Has(TcpHeader.Rst) && _listening)
        {
            if (_halfOpen + (_acceptQueue!.Reader.CanCount ? _acceptQueue.Reader.Count : 0) >= _backlog)
            {
                // Full of connections waiting to be accepted: as Linux does, the SYN is dropped, not refused, and the
                // client's retry may find room. Full of half-open ones (a SYN flood, most likely from forged
                // addresses): the oldest is forgotten for the newcomer, as BSD's SYN cache does, so that an honest
                // client whose handshake completes within the time the flood takes to fill the backlog gets in.
                if (_halfOpen == 0)
                {
                    return;
                }
                _halfOpenOrder.First!.Value.Forget();
            }
            connection = new TcpConnection(this, remote, remotePort, local) { WasHalfOpen = true };
            _connections[(remote, remotePort)] = connection;
            connection.HalfOpenNode = _halfOpenOrder.AddLast(connection);
            _halfOpen++;
            connection.Accept(segment, now);
            return;
        }
        if (!segment.Has(TcpHeader.Rst))
        {
            // No connection: answer as a closed port does.
            Transmit(local, remote, remotePort, TcpSegmentFields.ResetFor(segment.Sequence, segment.Acknowledgement, flags, segment.Payload.Length),
                [], null, 0, 0);
        }
    }

    /// <summary>
    /// An ICMPv6 error the daemon found to quote a segment of ours: a packet-too-big (RFC 8201) lowers that connection's
    /// MSS to what the path carries. Other errors are left to the timers, as Linux's TCP leaves soft errors.
    /// </summary>
    private void OnIcmpv6Error(ReadOnlySpan<byte> packet, in ParsedPacket parsed, long now)
    {
        const byte PacketTooBig = 2;
        if (parsed.IcmpType != PacketTooBig || !QuotedPacket.TryRead(packet[parsed.PayloadOffset..parsed.PacketEnd], out var quoted)
            || quoted.Protocol != IpProtocols.Tcp)
        {
            return;
        }
        int mtu = (int)Math.Min(int.MaxValue, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(packet[(parsed.TransportOffset + 4)..]));
        if (_connections.TryGetValue((quoted.Destination, quoted.DestinationPort), out var connection))
        {
            connection.OnPacketTooBig(mtu, quoted.Sequence, now);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _nudge.Signal();
        if (!_loop.IsCurrentThread)
        {
            _loop.Join();
        }
    }
}
