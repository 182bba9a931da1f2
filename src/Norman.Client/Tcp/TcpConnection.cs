using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Shm;

namespace Norman.Client.Tcp;

/// <summary>
/// One TCP connection (RFC 9293): its control block and state machine. The endpoint's loop thread alone runs the
/// protocol (segments in, timers, output); application threads only put bytes into the send buffer, take bytes
/// from the receive buffer and ask the loop for service. Retransmission as RFC 6298, congestion control CUBIC or NewReno, timestamps and PAWS, SACK,
/// MSS and window scaling negotiated on the SYN, delayed acknowledgements, zero-window probes that never count as
/// retransmissions, TIME-WAIT. Against blind attackers as RFC 5961 and Linux: a reset must hit RCV.NXT exactly (one
/// elsewhere in the window draws a challenge ACK), an acknowledgement must lie within [SND.UNA − MAX.SND.WND, SND.MAX],
/// answers to segments outside the window are rate-limited, initial sequence numbers are keyed hashes (RFC 6528).
/// </summary>
internal sealed partial class TcpConnection
{
    public const ushort OurMss = 1460;

    /// <summary>
    /// The MSS this connection announces and sends at most: <see cref="OurMss"/> over IPv4, 20 bytes less over IPv6,
    /// whose header is that much longer in the same 1500-byte MTU.
    /// </summary>
    private ushort LocalMss => RemoteAddress.IsV4 ? OurMss : (ushort)(OurMss - 20);
    public const byte OurWindowScale = 7;
    public const int BufferLimit = 1 << 20;
    private const int SynRetries = 6;
    private const int DataRetries = 15;
    private static readonly long DelayedAckTicks = Stopwatch.Frequency / 25; // 40 ms, Linux's floor
    private static readonly long TimeWaitTicks = Stopwatch.Frequency * 60;

    private readonly ITcpCarrier _carrier;
    private readonly ByteRing _send = new(BufferLimit);
    private readonly ByteRing _receive = new(BufferLimit);
    private readonly ReassemblyQueue _reassembly = new();
    private readonly RoundTripEstimator _rtt = new();
    private readonly SemaphoreSlim _readable = new(0);
    private readonly SemaphoreSlim _writable = new(0);
    private readonly TaskCompletionSource _established = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CongestionControl _congestion;

    // Send sequence space (RFC 9293 §3.3.1).
    private uint _iss, _sendUnacknowledged, _sendNext, _sendWindowUpdateSequence, _sendWindowUpdateAck;
    /// <summary>The highest sequence number sent: after going back N, acknowledgements up to it are still good.</summary>
    private uint _sendMax;
    private long _sendWindow;
    /// <summary>The largest window the peer has offered (MAX.SND.WND): how far behind SND.UNA an acknowledgement may lie.</summary>
    private long _maxSendWindow;
    private int _sendWindowScale;
    private int _sendMss = 536;
    // Receive sequence space.
    private uint _receiveNext;
    private uint _irs;
    /// <summary>The right edge of the furthest window we advertised (RCV.NXT + RCV.WND when we sent it).</summary>
    private uint _advertisedEdge;
    private long _unacceptable;
    /// <summary>Segments PAWS dropped as older than TS.Recent.</summary>
    private long _pawsRejected;
    private long _retransmits;

    /// <summary>Times a packet-too-big lowered the send MSS (<see cref="OnPacketTooBig"/>).</summary>
    public long PathMtuReductions { get; private set; }

    /// <summary>The most payload a segment of ours carries now (options and all).</summary>
    public int SendMss => _sendMss;
    /// <summary>Challenge ACKs sent (RFC 5961) and resets ignored as not exact or out of the window: what `ss -ti` shows.</summary>
    private long _challengeAcks, _resetsIgnored;
    /// <summary>When we last answered a segment outside the window (an ACK or a SYN), for the rate limit.</summary>
    private long _lastOutOfWindowAnswer = long.MinValue / 2; // long ago
    /// <summary>Zero-window probing (the persist timer): probes sent in a row without an answer, and the interval's backoff.</summary>
    private int _unansweredProbes, _probeBackoff;
    /// <summary>The application has let go of the connection (closed its stream): an orphan's FIN-WAIT-2 does not last.</summary>
    private bool _orphaned;
    private ushort _identification = (ushort)Libc.RandomUInt32();
    private int _receiveWindowScale;
    /// <summary>Whether our SYN carries the window scale option: always when we open, only if the peer's did when it does.</summary>
    private bool _offerWindowScale = true;
    /// <summary>
    /// Timestamps (RFC 7323): offered on our SYN as on the window scale; in use once both SYNs carried them. Then every
    /// segment carries our clock (milliseconds from a random origin, so that it tells nothing of the host's uptime) and
    /// echoes TS.Recent, the peer's latest; a segment whose TSval is older than TS.Recent is an old duplicate (PAWS).
    /// </summary>
    private bool _offerTimestamps = true, _timestamps;
    /// <summary>
    /// SACK (RFC 2018): offered on our SYN as the rest; in use once both SYNs carried it. Then an ACK sent while
    /// out-of-order data is kept says which blocks we hold, so that the sender retransmits only what is missing; and in
    /// recovery each duplicate ACK sends again the next hole below what the peer SACKed (RFC 6675's NextSeg), instead of
    /// waiting a round trip per lost segment for partial acknowledgements as NewReno alone does.
    /// </summary>
    private bool _offerSack = true, _sack;
    /// <summary>What the peer's SACK blocks say it holds, and where the next hole to send again is looked for in recovery.</summary>
    private readonly SackScoreboard _scoreboard = new();
    private uint _retransmitNext;
    private uint _timestampRecent;
    private uint _timestampOrigin = Libc.RandomUInt32() & int.MaxValue;
    /// <summary>RCV.NXT when we last acknowledged (Last.ACK.sent): only a segment at or before it may move TS.Recent.</summary>
    private uint _lastAcknowledgementSent;
    private int _lastAdvertisedWindow;

    private bool _finRequested, _finSent, _finEverSent, _finReceived, _resetRequested;
    /// <summary>An acknowledgement that found the TX pipe full: sent at the next turn of the loop.</summary>
    private bool _ackPending;
    private uint _finSequence;
    private int _duplicateAcks, _retries, _segmentsSinceAck;
    private bool _timing;
    private uint _timedSequence;
    private long _timedAt;
    private volatile Exception? _error;

    /// <summary>A connection to <paramref name="remoteAddress"/>; <paramref name="localAddress"/> is ours: the address the peer's SYN was sent to, or by default (a connection we open) the carrier's choice for the remote.</summary>
    public TcpConnection(ITcpCarrier carrier, NetAddress remoteAddress, ushort remotePort, NetAddress? localAddress = null)
    {
        _carrier = carrier;
        RemoteAddress = remoteAddress;
        LocalAddress = localAddress ?? carrier.LocalAddressFor(remoteAddress);
        RemotePort = remotePort;
        _congestion = CongestionControl.Create(carrier.CongestionControl, LocalMss);
    }

    /// <summary>1 while the connection waits in its endpoint's service queue: it is queued once, however often woken.</summary>
    private int _queued;

    /// <summary>True if this call queued it (it was not queued already).</summary>
    public bool MarkQueued() => Interlocked.Exchange(ref _queued, 1) == 0;

    /// <summary>The loop took it off the queue: the next wake queues it again.</summary>
    public void UnmarkQueued() => Volatile.Write(ref _queued, 0);

    /// <summary>Made from a SYN to a listener and not yet handed to the application: counts against the backlog.</summary>
    public bool WasHalfOpen { get; set; }

    /// <summary>Its place among the listener's half-open connections, while it is one.</summary>
    public LinkedListNode<TcpConnection>? HalfOpenNode { get; set; }

    public NetAddress RemoteAddress { get; }

    /// <summary>Our end's address, fixed when the connection is made: every segment leaves from it.</summary>
    public NetAddress LocalAddress { get; }
    public ushort RemotePort { get; }
    public TcpState State { get; private set; } = TcpState.Closed;

    /// <summary>
    /// Timers, as Stopwatch timestamps; 0 when off. The loop checks them about once a millisecond. <see cref="CloseAt"/>
    /// ends TIME-WAIT, or an orphaned FIN-WAIT-2; <see cref="ProbeAt"/> is the persist timer.
    /// </summary>
    public long RetransmitAt { get; private set; }
    public long DelayedAckAt { get; private set; }
    public long CloseAt { get; private set; }
    public long ProbeAt { get; private set; }
    public bool HasTimers => RetransmitAt != 0 || DelayedAckAt != 0 || CloseAt != 0 || ProbeAt != 0;

    /// <summary>Challenge ACKs sent and resets ignored so far (RFC 5961), for the socket's totals.</summary>
    public long ChallengeAcks => _challengeAcks;
    public long ResetsIgnored => _resetsIgnored;

    /// <summary>The IP identification of the connection's next segment: its own counter, from a random start.</summary>
    public ushort NextIdentification() => _identification++;

    /// <summary>Completes when the handshake does; faults if the connection is refused or times out.</summary>
    public Task Established => _established.Task;

    // ---------------- Application side (any thread) ----------------

    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellation)
    {
        while (true)
        {
            int read = TryRead(buffer.Span);
            if (read >= 0)
            {
                return read;
            }
            await _readable.WaitAsync(cancellation).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// What a read finds now, without waiting: the bytes copied, 0 at the peer's FIN (or into an empty buffer), -1 when
    /// a read would wait (a non-blocking socket's EAGAIN). Throws the connection's error (reset, timeout). With
    /// <paramref name="peek"/> (MSG_PEEK) the bytes stay for the next read.
    /// </summary>
    public int TryRead(Span<byte> buffer, bool peek = false)
    {
        bool windowWasSmall;
        int read;
        lock (_receive)
        {
            windowWasSmall = _receive.Free < 2 * OurMss;
            read = _receive.Peek(0, buffer);
            if (!peek)
            {
                _receive.Discard(read);
            }
        }
        if (read > 0)
        {
            if (windowWasSmall && !peek)
            {
                _carrier.Wake(this); // the window opened: tell the sender
            }
            return read;
        }
        if (_error is { } error)
        {
            throw error;
        }
        return Volatile.Read(ref _finReceived) || buffer.IsEmpty ? 0 : -1;
    }

    /// <summary>Bytes received and not yet read (FIONREAD).</summary>
    public int Available
    {
        get
        {
            lock (_receive)
            {
                return _receive.Count;
            }
        }
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellation)
    {
        while (!data.IsEmpty)
        {
            data = data[TryWrite(data.Span)..];
            if (!data.IsEmpty)
            {
                await _writable.WaitAsync(cancellation).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Copies what fits of <paramref name="data"/> into the send buffer now and returns how much (0 when it is full: a
    /// non-blocking socket's EAGAIN). Throws the connection's error, and EPIPE after the sending side was shut down.
    /// </summary>
    public int TryWrite(ReadOnlySpan<byte> data)
    {
        if (_error is { } error)
        {
            throw error;
        }
        if (Volatile.Read(ref _finRequested))
        {
            throw new NormanException("EPIPE", "The connection's sending side is shut down (shutdown or close): nothing more can be written.");
        }
        int written;
        lock (_send)
        {
            written = _send.Write(data);
        }
        if (written > 0)
        {
            _carrier.Wake(this);
        }
        return written;
    }

    /// <summary>Sends FIN once everything written has been sent (shutdown(SHUT_WR)).</summary>
    public void ShutdownSend()
    {
        Volatile.Write(ref _finRequested, true);
        _carrier.Wake(this);
    }

    /// <summary>
    /// Closes the connection as the close of a program's last descriptor does: a reset if bytes were left unread, else a
    /// FIN after what was written; then it is let go of (<see cref="Orphan"/>).
    /// </summary>
    public void CloseAsLastDescriptor()
    {
        if (HasUnreadData)
        {
            Abort();
        }
        else
        {
            ShutdownSend();
        }
        Orphan();
    }

    /// <summary>
    /// The application let go of the connection (its stream closed, after <see cref="ShutdownSend"/> or
    /// <see cref="Abort"/>): from FIN-WAIT-2 it waits at most <see cref="TcpLimits.FinWait2Ticks"/> for the peer's FIN.
    /// </summary>
    public void Orphan()
    {
        Volatile.Write(ref _orphaned, true);
        _carrier.Wake(this);
    }

    /// <summary>Resets the connection (close with SO_LINGER 0, or close with unread data).</summary>
    public void Abort()
    {
        Volatile.Write(ref _resetRequested, true);
        _carrier.Wake(this);
    }

    /// <summary>Bytes written and not yet acknowledged, and bytes received and not yet read: ss's Send-Q and Recv-Q.</summary>
    public (int Send, int Receive) Queues()
    {
        int send, receive;
        lock (_send)
        {
            send = _send.Count;
        }
        lock (_receive)
        {
            receive = _receive.Count;
        }
        return (send, receive);
    }

    public bool HasUnreadData
    {
        get
        {
            lock (_receive)
            {
                return _receive.Count > 0;
            }
        }
    }

    /// <summary>What `norman ss` lists of the connection: state, queues and the figures `ss -ti` shows (read racily).</summary>
    public ConnectionTable.Record Report()
    {
        var (send, receive) = Queues();
        return new ConnectionTable.Record(RemoteAddress, RemotePort, (byte)State, (uint)send, (uint)receive,
            (uint)(_rtt.SmoothedTicks * 1_000_000 / Stopwatch.Frequency), (ushort)Math.Min(ushort.MaxValue, _rtt.TimeoutTicks * 1000 / Stopwatch.Frequency),
            (ushort)_sendMss, (uint)Math.Min(uint.MaxValue, _congestion.Window), (uint)_retransmits, (uint)_challengeAcks, (uint)_resetsIgnored,
            Features);
    }

    /// <summary>What the connection table records of the options in use: the congestion control's number (1 cubic, 2 reno), TS, SACK.</summary>
    private byte Features => ConnectionTable.Features(_congestion.Algorithm == TcpCongestionControl.Cubic ? (byte)1 : (byte)2, _timestamps, _sack);

    /// <summary>The control block as `ss -ti` shows a kernel's (read racily, for people).</summary>
    public string Describe()
    {
        var (buffered, received) = Queues();
        return $"{State} snd_una {_sendUnacknowledged - _iss} snd_nxt {_sendNext - _iss} snd_max {_sendMax - _iss} snd_wnd {_sendWindow} " +
            $"{(_timestamps ? "ts " : "")}{(_sack ? "sack " : "")}{ConnectionTable.CongestionControlName(Features)} cwnd {_congestion.Window} ssthresh {_congestion.Threshold} recovery {_congestion.InRecovery} rto {_rtt.TimeoutTicks * 1000 / Stopwatch.Frequency}ms " +
            $"retries {_retries} dupacks {_duplicateAcks} send_q {buffered} recv_q {received} rcv_nxt {_receiveNext - _irs} rcv_wnd {ReceiveWindowBytes()} " +
            $"ooo {_reassembly.Count} unacceptable {_unacceptable} paws {_pawsRejected} challenge_acks {_challengeAcks} rst_ignored {_resetsIgnored} " +
            $"probes {_unansweredProbes} fin_sent {_finSent} fin_recv {_finReceived} rto_armed {RetransmitAt != 0} mss {_sendMss} pmtu_reductions {PathMtuReductions}";
    }

    // ---------------- Protocol (the endpoint's loop thread): lifecycle here; TcpConnection.Input, .Output and .Timers ----------------



    /// <summary>Active open: SYN with our MSS and window scale.</summary>
    public void Open(long now)
    {
        _iss = InitialSequence.For(LocalAddress, _carrier.LocalPort, RemoteAddress, RemotePort, now);
        _sendUnacknowledged = _iss;
        _sendNext = _sendMax = _iss + 1;
        State = TcpState.SynSent;
        SendSyn(TcpHeader.Syn, now);
        ArmRetransmit(now);
    }

    /// <summary>Passive open, from a SYN to the listening endpoint: SYN-ACK.</summary>
    public void Accept(in TcpSegment syn, long now)
    {
        _receiveNext = syn.Sequence + 1;
        _irs = syn.Sequence;
        _advertisedEdge = _receiveNext;
        TakeSynOptions(syn);
        _sendWindow = _maxSendWindow = syn.Window; // never scaled in a SYN
        _sendWindowUpdateSequence = syn.Sequence;
        _iss = InitialSequence.For(LocalAddress, _carrier.LocalPort, RemoteAddress, RemotePort, now);
        _sendUnacknowledged = _iss;
        _sendNext = _sendMax = _iss + 1;
        State = TcpState.SynReceived;
        SendSyn(TcpHeader.Syn | TcpHeader.Ack, now);
        ArmRetransmit(now);
    }

    private void Close()
    {
        State = TcpState.Closed;
        RetransmitAt = DelayedAckAt = CloseAt = ProbeAt = 0;
        Release(_readable);
        Release(_writable);
        _carrier.Forget(this);
    }

    /// <summary>A half-open connection given up for a newer one (a SYN flood): gone without a word, as a SYN cache drops one.</summary>
    public void Forget() => Close();

    /// <summary>The endpoint ended under the connection (the daemon went away, or the application disposed everything).</summary>
    public void Abandon()
    {
        _error ??= new NormanDaemonUnavailableException("The connection's Norman socket is gone: the daemon went away, or the socket was closed.");
        _established.TrySetException(_error);
        State = TcpState.Closed;
        Release(_readable);
        Release(_writable);
    }

    private void Fail(Exception error, bool reset)
    {
        if (reset)
        {
            SendReset(AcceptableSequence);
        }
        _error = error;
        _established.TrySetException(error);
        Close();
    }

    private void Release(SemaphoreSlim signal)
    {
        if (signal.CurrentCount == 0)
        {
            signal.Release();
        }
        ReadinessChanged?.Invoke();
    }

    /// <summary>
    /// Called (on the protocol thread) whenever the connection may have become readable or writable: libnorman keeps a
    /// descriptor's readiness with it, for programs that wait in poll or epoll.
    /// </summary>
    internal Action? ReadinessChanged { get; set; }

    /// <summary>A write would take at least a byte: the send buffer has room (or the connection has failed, which a write reports).</summary>
    internal bool IsWritable
    {
        get
        {
            lock (_send)
            {
                return _send.Free > 0 || _error is not null;
            }
        }
    }

    /// <summary>A read would not wait: bytes are there, or the peer's FIN, or an error, or the connection is closed.</summary>
    internal bool IsReadable
    {
        get
        {
            lock (_receive)
            {
                if (_receive.Count > 0)
                {
                    return true;
                }
            }
            return Volatile.Read(ref _finReceived) || _error is not null || State == TcpState.Closed;
        }
    }
}
