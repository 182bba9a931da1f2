using System.Diagnostics;
using System.Security.Cryptography;
using Norman.Core.Packets;
using Norman.Core.Pipes;

namespace Norman.Client.Tcp;

/// <summary>
/// One TCP connection (RFC 9293): its control block and state machine. The endpoint's loop thread alone runs the
/// protocol (segments in, timers, output); application threads only put bytes into the send buffer, take bytes
/// from the receive buffer and ask the loop for service. Retransmission as RFC 6298, congestion control as NewReno,
/// MSS and window scaling negotiated on the SYN, delayed acknowledgements, TIME-WAIT.
/// </summary>
internal sealed class TcpConnection
{
    public const ushort OurMss = 1460;
    public const byte OurWindowScale = 7;
    public const int BufferLimit = 1 << 20;
    private const int SynRetries = 6;
    private const int DataRetries = 15;
    private static readonly long DelayedAckTicks = Stopwatch.Frequency / 25; // 40 ms, Linux's floor
    private static readonly long TimeWaitTicks = Stopwatch.Frequency * 60;

    private readonly TcpEndpoint _endpoint;
    private readonly ByteRing _send = new(BufferLimit);
    private readonly ByteRing _receive = new(BufferLimit);
    private readonly ReassemblyQueue _reassembly = new();
    private readonly RoundTripEstimator _rtt = new();
    private readonly SemaphoreSlim _readable = new(0);
    private readonly SemaphoreSlim _writable = new(0);
    private readonly TaskCompletionSource _established = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private NewReno _congestion = new(OurMss);

    // Send sequence space (RFC 9293 §3.3.1).
    private uint _iss, _sendUnacknowledged, _sendNext, _sendWindowUpdateSequence, _sendWindowUpdateAck;
    /// <summary>The highest sequence number sent: after going back N, acknowledgements up to it are still good.</summary>
    private uint _sendMax;
    private long _sendWindow;
    private int _sendWindowScale;
    private int _sendMss = 536;
    // Receive sequence space.
    private uint _receiveNext;
    private uint _irs;
    /// <summary>The right edge of the furthest window we advertised (RCV.NXT + RCV.WND when we sent it).</summary>
    private uint _advertisedEdge;
    private long _unacceptable;
    private long _retransmits;
    private int _receiveWindowScale;
    /// <summary>Whether our SYN carries the window scale option: always when we open, only if the peer's did when it does.</summary>
    private bool _offerWindowScale = true;
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

    public TcpConnection(TcpEndpoint endpoint, NetAddress remoteAddress, ushort remotePort)
    {
        _endpoint = endpoint;
        RemoteAddress = remoteAddress;
        RemotePort = remotePort;
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
    public ushort RemotePort { get; }
    public TcpEndpoint Endpoint => _endpoint;
    public TcpState State { get; private set; } = TcpState.Closed;

    /// <summary>Timers, as Stopwatch timestamps; 0 when off. The loop checks them about once a millisecond.</summary>
    public long RetransmitAt { get; private set; }
    public long DelayedAckAt { get; private set; }
    public long TimeWaitEndsAt { get; private set; }
    public bool HasTimers => RetransmitAt != 0 || DelayedAckAt != 0 || TimeWaitEndsAt != 0;

    /// <summary>Completes when the handshake does; faults if the connection is refused or times out.</summary>
    public Task Established => _established.Task;

    // ---------------- Application side (any thread) ----------------

    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellation)
    {
        while (true)
        {
            bool windowWasSmall;
            int read;
            lock (_receive)
            {
                windowWasSmall = _receive.Free < 2 * OurMss;
                read = _receive.Peek(0, buffer.Span);
                _receive.Discard(read);
            }
            if (read > 0)
            {
                if (windowWasSmall)
                {
                    _endpoint.Wake(this); // the window opened: tell the sender
                }
                return read;
            }
            if (_error is { } error)
            {
                throw error;
            }
            if (Volatile.Read(ref _finReceived) || buffer.Length == 0)
            {
                return 0;
            }
            await _readable.WaitAsync(cancellation).ConfigureAwait(false);
        }
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellation)
    {
        while (!data.IsEmpty)
        {
            if (_error is { } error)
            {
                throw error;
            }
            if (Volatile.Read(ref _finRequested))
            {
                throw new InvalidOperationException("The connection's sending side is shut down.");
            }
            int written;
            lock (_send)
            {
                written = _send.Write(data.Span);
            }
            data = data[written..];
            if (written > 0)
            {
                _endpoint.Wake(this);
            }
            if (!data.IsEmpty)
            {
                await _writable.WaitAsync(cancellation).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Sends FIN once everything written has been sent (shutdown(SHUT_WR)).</summary>
    public void ShutdownSend()
    {
        Volatile.Write(ref _finRequested, true);
        _endpoint.Wake(this);
    }

    /// <summary>Resets the connection (close with SO_LINGER 0, or close with unread data).</summary>
    public void Abort()
    {
        Volatile.Write(ref _resetRequested, true);
        _endpoint.Wake(this);
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
        return new ConnectionTable.Record(RemoteAddress.V4, RemotePort, (byte)State, (uint)send, (uint)receive,
            (uint)(_rtt.SmoothedTicks * 1_000_000 / Stopwatch.Frequency), (ushort)Math.Min(ushort.MaxValue, _rtt.TimeoutTicks * 1000 / Stopwatch.Frequency),
            (ushort)_sendMss, (uint)Math.Min(uint.MaxValue, _congestion.Window), (uint)_retransmits);
    }

    /// <summary>The control block as `ss -ti` shows a kernel's (read racily, for people).</summary>
    public string Describe()
    {
        var (buffered, received) = Queues();
        return $"{State} snd_una {_sendUnacknowledged - _iss} snd_nxt {_sendNext - _iss} snd_max {_sendMax - _iss} snd_wnd {_sendWindow} " +
            $"cwnd {_congestion.Window} ssthresh {_congestion.Threshold} recovery {_congestion.InRecovery} rto {_rtt.TimeoutTicks * 1000 / Stopwatch.Frequency}ms " +
            $"retries {_retries} dupacks {_duplicateAcks} send_q {buffered} recv_q {received} rcv_nxt {_receiveNext - _irs} rcv_wnd {ReceiveWindowBytes()} " +
            $"ooo {_reassembly.Count} unacceptable {_unacceptable} fin_sent {_finSent} fin_recv {_finReceived} rto_armed {RetransmitAt != 0}";
    }

    // ---------------- Protocol (the endpoint's loop thread) ----------------

    /// <summary>Active open: SYN with our MSS and window scale.</summary>
    public void Open(long now)
    {
        _iss = (uint)RandomNumberGenerator.GetInt32(int.MaxValue) * 2;
        _sendUnacknowledged = _iss;
        _sendNext = _sendMax = _iss + 1;
        State = TcpState.SynSent;
        SendSyn(TcpHeader.Syn);
        ArmRetransmit(now);
    }

    /// <summary>Passive open, from a SYN to the listening endpoint: SYN-ACK.</summary>
    public void Accept(in TcpSegment syn, long now)
    {
        _receiveNext = syn.Sequence + 1;
        _irs = syn.Sequence;
        _advertisedEdge = _receiveNext;
        TakeSynOptions(syn);
        _sendWindow = syn.Window; // never scaled in a SYN
        _sendWindowUpdateSequence = syn.Sequence;
        _iss = (uint)RandomNumberGenerator.GetInt32(int.MaxValue) * 2;
        _sendUnacknowledged = _iss;
        _sendNext = _sendMax = _iss + 1;
        State = TcpState.SynReceived;
        SendSyn(TcpHeader.Syn | TcpHeader.Ack);
        ArmRetransmit(now);
    }

    public void OnSegment(in TcpSegment segment, long now)
    {
        if (State == TcpState.SynSent)
        {
            OnSegmentWhileOpening(segment, now);
            return;
        }
        if (State == TcpState.Closed)
        {
            return;
        }
        if (!IsAcceptable(segment))
        {
            _unacceptable++;
            if (!segment.Has(TcpHeader.Rst))
            {
                SendAck(); // RFC 9293: an unacceptable segment is answered with an ACK, then dropped
            }
            return;
        }
        if (segment.Has(TcpHeader.Rst))
        {
            Fail(new NormanException("ECONNRESET", $"Connection reset by {RemoteAddress}:{RemotePort}."), reset: false);
            return;
        }
        if (segment.Has(TcpHeader.Syn))
        {
            if (State == TcpState.SynReceived && segment.Sequence + 1 == _receiveNext)
            {
                SendSyn(TcpHeader.Syn | TcpHeader.Ack); // our SYN-ACK was lost: the peer sent its SYN again
            }
            else
            {
                SendAck(); // a SYN in a synchronized state: challenge ACK (RFC 5961)
            }
            return;
        }
        if (!segment.Has(TcpHeader.Ack))
        {
            return;
        }
        if (State == TcpState.SynReceived)
        {
            if (!TcpSequence.After(segment.Acknowledgement, _sendUnacknowledged) || TcpSequence.After(segment.Acknowledgement, _sendNext))
            {
                SendReset(segment.Acknowledgement);
                return;
            }
            _sendUnacknowledged = segment.Acknowledgement;
            UpdateSendWindow(segment);
            if (_timing)
            {
                _rtt.Sample(now - _timedAt); // the SYN-ACK's round trip (never a retransmitted one's: Karn)
                _timing = false;
            }
            State = TcpState.Established;
            DisarmRetransmit();
            _retries = 0;
            _endpoint.Accepted(this);
            _established.TrySetResult();
        }
        else if (!OnAcknowledgement(segment, now))
        {
            return;
        }
        if (!segment.Payload.IsEmpty && State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2)
        {
            OnData(segment, now);
        }
        if (segment.Has(TcpHeader.Fin) && segment.Sequence + (uint)segment.Payload.Length == _receiveNext && !_finReceived)
        {
            OnFin(now);
        }
        Output(now);
    }

    /// <summary>Whatever the application asked for: bytes to send, FIN, a reset, a window update.</summary>
    public void Service(long now)
    {
        if (_resetRequested && State != TcpState.Closed)
        {
            if (State != TcpState.SynSent)
            {
                SendReset(AcceptableSequence);
            }
            Fail(new NormanException("ECONNABORTED", "The connection was aborted."), reset: false);
            return;
        }
        Output(now);
        if (_ackPending)
        {
            SendAck();
        }
        if (State is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2)
        {
            // The application read: if that opened the window by two segments (or from under one), say so (RFC 9293 §3.8.6.2.2).
            int window = ReceiveWindowBytes();
            if (window - _lastAdvertisedWindow >= 2 * OurMss || (_lastAdvertisedWindow < OurMss && window >= OurMss))
            {
                SendAck();
            }
        }
    }

    public void OnTimers(long now)
    {
        if (TimeWaitEndsAt != 0 && now >= TimeWaitEndsAt)
        {
            TimeWaitEndsAt = 0;
            Close();
            return;
        }
        if (DelayedAckAt != 0 && now >= DelayedAckAt)
        {
            SendAck();
        }
        if (RetransmitAt != 0 && now >= RetransmitAt)
        {
            OnRetransmitTimeout(now);
        }
    }

    private void OnSegmentWhileOpening(in TcpSegment segment, long now)
    {
        bool ackAcceptable = segment.Has(TcpHeader.Ack) && segment.Acknowledgement == _iss + 1;
        if (segment.Has(TcpHeader.Ack) && !ackAcceptable)
        {
            if (!segment.Has(TcpHeader.Rst))
            {
                SendReset(segment.Acknowledgement);
            }
            return;
        }
        if (segment.Has(TcpHeader.Rst))
        {
            if (ackAcceptable)
            {
                Fail(new NormanException("ECONNREFUSED", $"Connection refused by {RemoteAddress}:{RemotePort}."), reset: false);
            }
            return;
        }
        if (!segment.Has(TcpHeader.Syn) || !ackAcceptable)
        {
            return; // a simultaneous open is not supported: the peer's SYN is left to time out
        }
        _receiveNext = segment.Sequence + 1;
        _irs = segment.Sequence;
        _advertisedEdge = _receiveNext;
        TakeSynOptions(segment);
        _sendUnacknowledged = segment.Acknowledgement;
        _sendWindow = segment.Window;
        _sendWindowUpdateSequence = segment.Sequence;
        _sendWindowUpdateAck = segment.Acknowledgement;
        if (_timing)
        {
            _rtt.Sample(now - _timedAt);
            _timing = false;
        }
        State = TcpState.Established;
        DisarmRetransmit();
        _retries = 0;
        SendAck();
        _established.TrySetResult();
        Output(now);
    }

    private void TakeSynOptions(in TcpSegment syn)
    {
        _sendMss = syn.Mss == 0 ? 536 : Math.Min((int)syn.Mss, OurMss);
        _congestion = new NewReno(_sendMss);
        // Window scaling only if both offered it (RFC 7323 §2.2).
        if (syn.WindowScale >= 0)
        {
            _sendWindowScale = Math.Min(syn.WindowScale, 14);
            _receiveWindowScale = OurWindowScale;
        }
        else
        {
            _offerWindowScale = false;
        }
    }

    /// <summary>
    /// RFC 9293's acceptability test, against the window we advertised (as Linux's tcp_receive_window), or more if it has
    /// opened since: a buffer that filled after we promised room must not turn the peer's segments inside that promise
    /// — its acknowledgements above all — into segments we drop. Measured against the free buffer instead, a peer whose
    /// view of our window was older than our full buffer had its ACKs dropped, and both ends waited on each other.
    /// </summary>
    private bool IsAcceptable(in TcpSegment segment)
    {
        uint promised = TcpSequence.After(_advertisedEdge, _receiveNext) ? _advertisedEdge - _receiveNext : 0;
        uint window = Math.Max((uint)ReceiveWindowBytes(), promised);
        bool InWindow(uint sequence) => TcpSequence.AtOrAfter(sequence, _receiveNext) && TcpSequence.Before(sequence, _receiveNext + window);
        int length = segment.Length;
        if (length == 0)
        {
            return window == 0 ? segment.Sequence == _receiveNext : InWindow(segment.Sequence) || segment.Sequence == _receiveNext;
        }
        return window != 0 && (InWindow(segment.Sequence) || InWindow(segment.Sequence + (uint)length - 1)
            || (TcpSequence.Before(segment.Sequence, _receiveNext) && TcpSequence.After(segment.Sequence + (uint)length, _receiveNext)));
    }

    /// <summary>An ACK in a synchronized state; false when the segment is to be dropped.</summary>
    private bool OnAcknowledgement(in TcpSegment segment, long now)
    {
        uint ack = segment.Acknowledgement;
        if (TcpSequence.After(ack, _sendMax))
        {
            SendAck(); // acknowledges what we never sent
            return false;
        }
        if (TcpSequence.After(ack, _sendNext))
        {
            _sendNext = ack; // we went back N, and the peer had it already
            _finSent |= _finEverSent && ack == _finSequence + 1;
        }
        long windowBefore = _sendWindow;
        int acked = TcpSequence.After(ack, _sendUnacknowledged) ? (int)(ack - _sendUnacknowledged) : 0;
        if (acked > 0)
        {
            bool finAcked = _finEverSent && ack == _finSequence + 1;
            int dataAcked = acked - (finAcked ? 1 : 0);
            lock (_send)
            {
                _send.Discard(dataAcked);
            }
            Release(_writable);
            _sendUnacknowledged = ack;
            if (_timing && TcpSequence.AtOrAfter(ack, _timedSequence))
            {
                _rtt.Sample(now - _timedAt);
                _timing = false;
            }
            if (_congestion.InRecovery)
            {
                if (TcpSequence.AtOrAfter(ack, _congestion.Recover))
                {
                    _congestion.ExitRecovery();
                }
                else
                {
                    _congestion.OnPartialAcknowledgement(acked);
                    _timing = false;
                    RetransmitFirst();
                }
            }
            else
            {
                _congestion.OnAcknowledged(acked);
            }
            _duplicateAcks = 0;
            _retries = 0;
            if (_sendUnacknowledged == _sendNext)
            {
                DisarmRetransmit();
            }
            else
            {
                ArmRetransmit(now);
            }
            if (finAcked)
            {
                OnOurFinAcknowledged(now);
            }
        }
        else if (ack == _sendUnacknowledged && segment.Payload.IsEmpty && !segment.Has(TcpHeader.Fin)
            && segment.Window << _sendWindowScale == windowBefore && _sendNext != _sendUnacknowledged)
        {
            // A duplicate acknowledgement (RFC 5681 §2): the third starts fast retransmit and recovery.
            _duplicateAcks++;
            if (_duplicateAcks == 3 && !_congestion.InRecovery)
            {
                _congestion.EnterRecovery(_sendNext - _sendUnacknowledged, _sendNext);
                _timing = false;
                RetransmitFirst();
            }
            else if (_congestion.InRecovery)
            {
                _congestion.OnDuplicateInRecovery();
            }
        }
        UpdateSendWindow(segment);
        return State != TcpState.Closed;
    }

    private void UpdateSendWindow(in TcpSegment segment)
    {
        if (TcpSequence.Before(_sendWindowUpdateSequence, segment.Sequence)
            || (_sendWindowUpdateSequence == segment.Sequence && TcpSequence.AtOrBefore(_sendWindowUpdateAck, segment.Acknowledgement)))
        {
            _sendWindow = (long)segment.Window << _sendWindowScale;
            _sendWindowUpdateSequence = segment.Sequence;
            _sendWindowUpdateAck = segment.Acknowledgement;
        }
    }

    private void OnOurFinAcknowledged(long now)
    {
        switch (State)
        {
            case TcpState.FinWait1:
                State = _finReceived ? TcpState.TimeWait : TcpState.FinWait2;
                break;
            case TcpState.Closing:
                State = TcpState.TimeWait;
                break;
            case TcpState.LastAck:
                Close();
                return;
        }
        if (State == TcpState.TimeWait)
        {
            EnterTimeWait(now);
        }
    }

    private void OnData(in TcpSegment segment, long now)
    {
        uint start = segment.Sequence;
        var data = segment.Payload;
        if (TcpSequence.Before(start, _receiveNext))
        {
            int skip = (int)(_receiveNext - start);
            data = skip >= data.Length ? [] : data[skip..];
            start = _receiveNext;
        }
        if (data.IsEmpty)
        {
            SendAck(); // all old: a retransmission whose ACK was lost
            return;
        }
        if (start != _receiveNext)
        {
            // Out of order: keep it, and tell the sender at once what we miss (its duplicate ACKs drive fast retransmit).
            _reassembly.Add(start, data[..Math.Min(data.Length, ReceiveWindowBytes())]);
            SendAck();
            return;
        }
        int taken = Deliver(data);
        _receiveNext += (uint)taken;
        bool filledAGap = _reassembly.Count > 0;
        if (filledAGap)
        {
            _receiveNext = _reassembly.Drain(_receiveNext, memory => Deliver(memory.Span));
        }
        Release(_readable);
        if (filledAGap || taken < data.Length || ++_segmentsSinceAck >= 2)
        {
            SendAck(); // every second full segment, and at once after a gap fills (RFC 5681 §4.2)
        }
        else if (DelayedAckAt == 0)
        {
            DelayedAckAt = now + DelayedAckTicks;
            _endpoint.Timed(this);
        }
    }

    private int Deliver(ReadOnlySpan<byte> data)
    {
        lock (_receive)
        {
            return _receive.Write(data);
        }
    }

    private void OnFin(long now)
    {
        _receiveNext++;
        Volatile.Write(ref _finReceived, true);
        Release(_readable);
        SendAck();
        switch (State)
        {
            case TcpState.Established:
                State = TcpState.CloseWait;
                break;
            case TcpState.FinWait1:
                State = TcpState.Closing;
                break;
            case TcpState.FinWait2:
                State = TcpState.TimeWait;
                EnterTimeWait(now);
                break;
        }
    }

    /// <summary>Sends what the windows allow, then FIN if asked for and everything is out.</summary>
    private void Output(long now)
    {
        if (State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck) || _finSent)
        {
            return;
        }
        long window = Math.Min(_sendWindow, _congestion.Window);
        while (true)
        {
            int offset = (int)(_sendNext - _sendUnacknowledged);
            int buffered;
            lock (_send)
            {
                buffered = _send.Count;
            }
            int unsent = buffered - offset;
            long room = window - offset;
            if (unsent <= 0 || room <= 0)
            {
                if (unsent > 0 && _sendWindow == 0 && RetransmitAt == 0)
                {
                    ArmRetransmit(now); // zero window: the timer probes it
                }
                break;
            }
            int length = (int)Math.Min(Math.Min(unsent, _sendMss), room);
            if (!SendData(_sendNext, offset, length, now))
            {
                return;
            }
            AdvanceSendNext((uint)length);
        }
        if (Volatile.Read(ref _finRequested))
        {
            int buffered;
            lock (_send)
            {
                buffered = _send.Count;
            }
            if (_sendNext - _sendUnacknowledged == buffered && Transmit(TcpHeader.Fin | TcpHeader.Ack, _sendNext, 0, 0))
            {
                _finSequence = _sendNext;
                AdvanceSendNext(1);
                _finSent = _finEverSent = true;
                // The first FIN moves the state on; one sent again after a timeout leaves it where it is.
                State = State switch { TcpState.Established => TcpState.FinWait1, TcpState.CloseWait => TcpState.LastAck, var same => same };
                ArmRetransmit(now);
            }
        }
    }

    private bool SendData(uint sequence, int offset, int length, long now)
    {
        if (!Transmit(TcpHeader.Ack | TcpHeader.Psh, sequence, offset, length))
        {
            _endpoint.Wake(this); // the TX pipe is full: try again on the next turn of the loop
            return false;
        }
        _retransmits += TcpSequence.Before(sequence, _sendMax) ? 1 : 0;
        if (!_timing)
        {
            _timing = true;
            _timedSequence = sequence + (uint)length;
            _timedAt = now;
        }
        if (RetransmitAt == 0)
        {
            ArmRetransmit(now);
        }
        return true;
    }

    /// <summary>
    /// The sequence number a segment without data carries, so that the peer takes it (and its acknowledgement) in:
    /// the highest sent, but no further than the peer's window reaches (Linux's tcp_acceptable_seq). Not SND.NXT:
    /// going back N rewinds it below what the peer already has, and the peer would drop the segment as old — both
    /// ends going back at once then never hear each other. Not the highest sent alone: with the peer's window shut,
    /// only its window's edge is taken.
    /// </summary>
    private uint AcceptableSequence
    {
        get
        {
            uint windowEnd = _sendUnacknowledged + (uint)Math.Min(_sendWindow, int.MaxValue);
            return TcpSequence.Before(_sendMax, windowEnd) ? _sendMax : windowEnd;
        }
    }

    private void AdvanceSendNext(uint by)
    {
        _sendNext += by;
        _sendMax = TcpSequence.Max(_sendMax, _sendNext);
    }

    private void OnRetransmitTimeout(long now)
    {
        _rtt.Backoff();
        _timing = false;
        if (State is TcpState.SynSent or TcpState.SynReceived)
        {
            if (++_retries > SynRetries)
            {
                Fail(new NormanException("ETIMEDOUT", $"Connection to {RemoteAddress}:{RemotePort} timed out."), reset: false);
                return;
            }
            SendSyn(State == TcpState.SynSent ? TcpHeader.Syn : (byte)(TcpHeader.Syn | TcpHeader.Ack));
            ArmRetransmit(now);
            return;
        }
        uint inFlight = _sendNext - _sendUnacknowledged;
        if (inFlight == 0)
        {
            // Zero-window probe (the persist timer): one byte past the window.
            if (_sendWindow == 0 && SendData(_sendNext, 0, 1, now))
            {
                AdvanceSendNext(1);
            }
            ArmRetransmit(now);
            return;
        }
        if (++_retries > DataRetries)
        {
            Fail(new NormanException("ETIMEDOUT", $"Connection to {RemoteAddress}:{RemotePort} timed out: no acknowledgement after {DataRetries} retransmissions."), reset: true);
            return;
        }
        _congestion.OnTimeout(inFlight);
        _duplicateAcks = 0;
        // Go back N: everything after the first unacknowledged byte is sent again, in slow start (RFC 5681 §3.1).
        _sendNext = _sendUnacknowledged;
        _finSent = false;
        Output(now);
        ArmRetransmit(now);
    }

    /// <summary>Sends the oldest unacknowledged segment again (its data, or our FIN).</summary>
    private void RetransmitFirst()
    {
        if (_finSent && _sendUnacknowledged == _finSequence)
        {
            Transmit(TcpHeader.Fin | TcpHeader.Ack, _finSequence, 0, 0);
            return;
        }
        int buffered;
        lock (_send)
        {
            buffered = _send.Count;
        }
        int length = Math.Min(Math.Min(buffered, _sendMss), (int)(_sendNext - _sendUnacknowledged));
        if (length > 0)
        {
            Transmit(TcpHeader.Ack | TcpHeader.Psh, _sendUnacknowledged, 0, length);
        }
    }

    private void SendSyn(byte flags)
    {
        Span<byte> options = stackalloc byte[8];
        TcpSegmentBuilder.WriteSynOptions(options, OurMss, OurWindowScale);
        if (!_offerWindowScale)
        {
            options = options[..4]; // MSS alone
        }
        var fields = new TcpSegmentFields(_iss, (flags & TcpHeader.Ack) != 0 ? _receiveNext : 0, flags, (ushort)Math.Min(ReceiveWindowBytes(), ushort.MaxValue));
        if (_endpoint.Transmit(this, fields, options, 0, 0) && (flags & TcpHeader.Ack) != 0)
        {
            Advertised(fields.Window); // a SYN's window is never scaled
        }
        if (!_timing && _retries == 0)
        {
            _timing = true;
            _timedSequence = _iss + 1;
            _timedAt = Stopwatch.GetTimestamp();
        }
    }

    private void SendAck()
    {
        _ackPending = !Transmit(TcpHeader.Ack, AcceptableSequence, 0, 0);
        if (_ackPending)
        {
            _endpoint.Wake(this);
        }
    }

    private void SendReset(uint sequence) =>
        _endpoint.Transmit(this, new TcpSegmentFields(sequence, 0, TcpHeader.Rst, 0), [], 0, 0);

    /// <summary>Sends a segment that acknowledges what we have received and advertises our window.</summary>
    private bool Transmit(byte flags, uint sequence, int payloadOffset, int payloadLength)
    {
        var fields = new TcpSegmentFields(sequence, _receiveNext, flags, (ushort)Math.Min(ReceiveWindowBytes() >> _receiveWindowScale, ushort.MaxValue));
        if (!_endpoint.Transmit(this, fields, [], payloadOffset, payloadLength))
        {
            return false;
        }
        _segmentsSinceAck = 0;
        DelayedAckAt = 0;
        _ackPending = false;
        _lastAdvertisedWindow = fields.Window << _receiveWindowScale;
        Advertised(_lastAdvertisedWindow);
        return true;
    }

    /// <summary>The window we promised is ours to honour until the peer has used it, whatever our buffer does since.</summary>
    private void Advertised(int window)
    {
        uint edge = _receiveNext + (uint)window;
        if (TcpSequence.After(edge, _advertisedEdge))
        {
            _advertisedEdge = edge;
        }
    }

    /// <summary>Copies send-buffer bytes for the endpoint to put behind a segment's headers.</summary>
    public void CopyPayload(int offset, Span<byte> destination)
    {
        lock (_send)
        {
            _send.Peek(offset, destination);
        }
    }

    private int ReceiveWindowBytes()
    {
        lock (_receive)
        {
            return Math.Min(_receive.Free, _endpoint.WindowCap);
        }
    }

    private void ArmRetransmit(long now)
    {
        RetransmitAt = now + _rtt.TimeoutTicks;
        _endpoint.Timed(this);
    }

    private void DisarmRetransmit() => RetransmitAt = 0;

    private void EnterTimeWait(long now)
    {
        DisarmRetransmit();
        TimeWaitEndsAt = now + TimeWaitTicks;
        _endpoint.Timed(this);
    }

    private void Close()
    {
        State = TcpState.Closed;
        RetransmitAt = DelayedAckAt = TimeWaitEndsAt = 0;
        Release(_readable);
        Release(_writable);
        _endpoint.Forget(this);
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

    private static void Release(SemaphoreSlim signal)
    {
        if (signal.CurrentCount == 0)
        {
            signal.Release();
        }
    }
}
