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
}
