using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;

namespace Norman.Client.Tcp;

/// <summary>Segments in: acceptability, acknowledgements, data and FIN (Linux's tcp_input.c).</summary>
internal sealed partial class TcpConnection
{
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
        if (State == TcpState.SynReceived && segment.Flags == TcpHeader.Syn && segment.Sequence == _irs)
        {
            // The peer sent its SYN again: our SYN-ACK was lost. Send it again now, not at our own timer. (Before the
            // acceptability test, which a SYN below RCV.NXT fails.)
            SendSyn(TcpHeader.Syn | TcpHeader.Ack, now);
            return;
        }
        if (_timestamps && segment.HasTimestamps && !segment.Has(TcpHeader.Rst)
            && TcpSequence.Before(segment.TimestampValue, _timestampRecent))
        {
            // PAWS (RFC 7323 §5.3, R1): an old duplicate from an earlier pass of the sequence space, or a forgery;
            // acknowledged and dropped, as Linux does.
            _unacceptable++;
            _pawsRejected++;
            SendAck();
            return;
        }
        if (!IsAcceptable(segment))
        {
            _unacceptable++;
            if (segment.Has(TcpHeader.Rst))
            {
                _resetsIgnored++; // outside the window: dropped without a word (RFC 5961 §3.2)
            }
            else if (segment.Has(TcpHeader.Syn))
            {
                SendChallengeAck(now);
            }
            else
            {
                AnswerOutOfWindow(segment, now); // RFC 9293: answered with an ACK, then dropped
            }
            return;
        }
        if (_timestamps && segment.HasTimestamps && TcpSequence.AtOrBefore(segment.Sequence, _lastAcknowledgementSent)
            && TcpSequence.AtOrAfter(segment.TimestampValue, _timestampRecent))
        {
            _timestampRecent = segment.TimestampValue; // R3: the newest TSval of a segment at the left edge
        }
        if (segment.Has(TcpHeader.Rst))
        {
            if (segment.Sequence != _receiveNext)
            {
                // In the window but not where we expect the next byte: a blind guess, most likely. A peer that really
                // reset answers the challenge ACK with a reset at RCV.NXT (RFC 5961 §3.2, as Linux).
                _resetsIgnored++;
                SendChallengeAck(now);
                return;
            }
            Fail(new NormanException("ECONNRESET", $"Connection reset by {RemoteAddress}:{RemotePort}."), reset: false);
            return;
        }
        if (segment.Has(TcpHeader.Syn))
        {
            SendChallengeAck(now); // a SYN in a synchronized state (RFC 5961 §4)
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
            _carrier.Accepted(this);
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
        _sendWindow = _maxSendWindow = segment.Window;
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

    /// <summary>
    /// A router said a segment of ours was too big for the path (ICMPv6 packet too big, RFC 8201), quoting its sequence
    /// number: believed only for a segment in flight (RFC 5927, as Linux checks), and only downward, never below IPv6's
    /// minimum MTU of 1280. Everything in flight was cut at the old size and dropped on the way: it is sent again from
    /// the oldest byte at the new size (as Linux's tcp_simple_retransmit), without taking the loss as congestion.
    /// </summary>
    public void OnPacketTooBig(int mtu, uint quotedSequence, long now)
    {
        if (State is not (TcpState.Established or TcpState.CloseWait) || _finSent
            || TcpSequence.Before(quotedSequence, _sendUnacknowledged) || !TcpSequence.Before(quotedSequence, _sendNext))
        {
            return;
        }
        int headers = Ipv6Header.Size + TcpHeader.Size + (_timestamps ? TcpOptions.TimestampsLength : 0);
        int mss = Math.Clamp(mtu, 1280, 65535) - headers;
        if (mss >= _sendMss)
        {
            return;
        }
        _sendMss = mss;
        PathMtuReductions++;
        _sendNext = _sendUnacknowledged;
        _timing = false;
        _scoreboard.Clear();
        Service(now);
    }

    private void TakeSynOptions(in TcpSegment syn)
    {
        // No MSS option means 536 (RFC 9293 §3.7.1); a tiny one is raised to a floor, as Linux's tcp_min_snd_mss.
        _sendMss = syn.Mss == 0 ? 536 : Math.Clamp((int)syn.Mss, TcpLimits.MinimumSendMss, LocalMss);
        // Timestamps only if both offered them (RFC 7323 §3.2); then each segment's 12 bytes of them come out of the MSS.
        _timestamps = _offerTimestamps && syn.HasTimestamps;
        _offerTimestamps = _timestamps;
        _sack = _offerSack && syn.SackPermitted;
        _offerSack = _sack;
        if (_timestamps)
        {
            _timestampRecent = syn.TimestampValue;
            _sendMss = Math.Max(TcpLimits.MinimumSendMss, _sendMss - TcpOptions.TimestampsLength);
        }
        _congestion = CongestionControl.Create(_carrier.CongestionControl, _sendMss);
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

    /// <summary>
    /// An ACK in a synchronized state; false when the segment is to be dropped. Acceptable acknowledgements lie in
    /// [SND.UNA − MAX.SND.WND, SND.MAX] (RFC 5961 §5.2): one further behind is a blind attacker's guess, and the
    /// segment — its data too — is dropped with a challenge ACK, as Linux does.
    /// </summary>
    private bool OnAcknowledgement(in TcpSegment segment, long now)
    {
        uint ack = segment.Acknowledgement;
        if (TcpSequence.After(ack, _sendMax))
        {
            AnswerOutOfWindow(segment, now); // acknowledges what we never sent
            return false;
        }
        if (TcpSequence.Before(ack, _sendUnacknowledged - (uint)Math.Min(_maxSendWindow, int.MaxValue)))
        {
            SendChallengeAck(now);
            return false;
        }
        _unansweredProbes = 0; // the peer is there: zero-window probing starts its count again
        if (_sack && !segment.Options.IsEmpty)
        {
            Span<(uint Left, uint Right)> blocks = stackalloc (uint, uint)[4];
            int count = TcpOptions.ReadSack(segment.Options, blocks);
            for (int b = 0; b < count; b++)
            {
                _scoreboard.Add(blocks[b].Left, blocks[b].Right, TcpSequence.After(ack, _sendUnacknowledged) ? ack : _sendUnacknowledged, _sendMax);
            }
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
            _scoreboard.Prune(ack);
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
                    if (TcpSequence.Before(_retransmitNext, _sendUnacknowledged + (uint)_sendMss))
                    {
                        _retransmitNext = _sendUnacknowledged + (uint)_sendMss;
                    }
                }
            }
            else
            {
                _congestion.OnAcknowledged(acked, now, _rtt.SmoothedTicks);
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
                _retransmitNext = _sendUnacknowledged + (uint)_sendMss;
            }
            else if (_congestion.InRecovery)
            {
                _congestion.OnDuplicateInRecovery();
                RetransmitNextHole();
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
            _maxSendWindow = Math.Max(_maxSendWindow, _sendWindow);
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
                LimitOrphanedFinWait2(now);
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
            _carrier.Timed(this);
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

    /// <summary>
    /// An ACK for a segment outside the window, at most once per <see cref="TcpLimits.OutOfWindowAnswerTicks"/> unless
    /// the segment carried data (Linux's tcp_oow_rate_limited): a retransmission whose ACK was lost is always answered,
    /// while a flood of forged ACKs gets one answer, not one each.
    /// </summary>
    private void AnswerOutOfWindow(in TcpSegment segment, long now)
    {
        if (segment.Payload.IsEmpty && OutOfWindowAnswerLimited(now))
        {
            return;
        }
        SendAck();
    }

    /// <summary>
    /// A challenge ACK (RFC 5961): our ACK, so that a real peer which lost track answers with what we can trust. Under
    /// the same per-connection rate as out-of-window answers, and the carrier's limit for all its connections (§7).
    /// </summary>
    private void SendChallengeAck(long now)
    {
        if (OutOfWindowAnswerLimited(now) || !_carrier.TakeChallengeAck(now))
        {
            return;
        }
        _challengeAcks++;
        SendAck();
    }

    private bool OutOfWindowAnswerLimited(long now)
    {
        if (now - _lastOutOfWindowAnswer < TcpLimits.OutOfWindowAnswerTicks)
        {
            return true;
        }
        _lastOutOfWindowAnswer = now;
        return false;
    }
}
