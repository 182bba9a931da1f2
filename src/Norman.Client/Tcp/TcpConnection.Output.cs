using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;

namespace Norman.Client.Tcp;

/// <summary>Segments out: data within the windows, ACKs, SYNs, resets, and what the application asked for (Linux's tcp_output.c).</summary>
internal sealed partial class TcpConnection
{
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
        LimitOrphanedFinWait2(now);
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
                if (unsent > 0 && _sendWindow == 0 && offset == 0 && ProbeAt == 0)
                {
                    ArmProbe(now); // the peer's window is shut with nothing in flight: the persist timer probes it
                }
                break;
            }
            int length = (int)Math.Min(Math.Min(unsent, _sendMss), room);
            if (!SendData(_sendNext, offset, length, now))
            {
                return;
            }
            AdvanceSendNext((uint)length);
            ProbeAt = 0;
            _probeBackoff = 0;
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
            _carrier.Wake(this); // the TX pipe is full: try again on the next turn of the loop
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

    /// <summary>
    /// In recovery with SACK: sends again the next hole below the highest byte the peer SACKed, one segment a duplicate
    /// ACK, each hole once (RFC 6675 §5, NextSeg's first rule).
    /// </summary>
    private void RetransmitNextHole()
    {
        if (!_sack || _scoreboard.Count == 0)
        {
            return;
        }
        uint from = TcpSequence.After(_retransmitNext, _sendUnacknowledged) ? _retransmitNext : _sendUnacknowledged;
        if (_scoreboard.NextHole(from, _sendMss, out uint start, out int length)
            && Transmit(TcpHeader.Ack | TcpHeader.Psh, start, (int)(start - _sendUnacknowledged), length))
        {
            _retransmits++;
            _retransmitNext = start + (uint)length;
        }
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

    private void SendSyn(byte flags, long now)
    {
        Span<byte> options = stackalloc byte[8 + TcpOptions.TimestampsLength];
        TcpSegmentBuilder.WriteSynOptions(options, LocalMss, OurWindowScale);
        int length = _offerWindowScale ? 8 : 4; // or MSS alone
        if (_offerTimestamps || _offerSack)
        {
            // NOP, NOP, timestamps; SACK-permitted (kind 4, length 2) takes the two NOPs' place when offered too.
            TcpOptions.WriteTimestamps(options[length..], OurTimestamp(now), (flags & TcpHeader.Ack) != 0 ? _timestampRecent : 0);
            if (_offerSack)
            {
                options[length + (_offerTimestamps ? 0 : 2)] = 4;
                options[length + (_offerTimestamps ? 1 : 3)] = 2;
            }
            length += _offerTimestamps ? TcpOptions.TimestampsLength : 4;
        }
        var fields = new TcpSegmentFields(_iss, (flags & TcpHeader.Ack) != 0 ? _receiveNext : 0, flags, (ushort)Math.Min(ReceiveWindowBytes(), ushort.MaxValue));
        if (_carrier.Transmit(this, fields, options[..length], 0, 0) && (flags & TcpHeader.Ack) != 0)
        {
            Advertised(fields.Window); // a SYN's window is never scaled
            _lastAcknowledgementSent = _receiveNext;
        }
        if (!_timing && _retries == 0)
        {
            _timing = true;
            _timedSequence = _iss + 1;
            _timedAt = now;
        }
    }

    /// <summary>Our TSval: milliseconds on the stack's clock, from the connection's random origin.</summary>
    private uint OurTimestamp(long now) => unchecked((uint)(now / (Stopwatch.Frequency / 1000)) + _timestampOrigin);

    private void SendAck()
    {
        _ackPending = !Transmit(TcpHeader.Ack, AcceptableSequence, 0, 0);
        if (_ackPending)
        {
            _carrier.Wake(this);
        }
    }

    private void SendReset(uint sequence) =>
        _carrier.Transmit(this, new TcpSegmentFields(sequence, 0, TcpHeader.Rst, 0), [], 0, 0);

    /// <summary>Sends a segment that acknowledges what we have received and advertises our window.</summary>
    private bool Transmit(byte flags, uint sequence, int payloadOffset, int payloadLength)
    {
        var fields = new TcpSegmentFields(sequence, _receiveNext, flags, (ushort)Math.Min(ReceiveWindowBytes() >> _receiveWindowScale, ushort.MaxValue));
        Span<byte> options = stackalloc byte[40];
        int optionsLength = 0;
        if (_timestamps)
        {
            TcpOptions.WriteTimestamps(options, OurTimestamp(_carrier.Now), _timestampRecent);
            optionsLength = TcpOptions.TimestampsLength;
        }
        if (_sack && _reassembly.Count > 0)
        {
            Span<(uint Left, uint Right)> blocks = stackalloc (uint, uint)[TcpOptions.MaxSackBlocks(_timestamps)];
            int count = _reassembly.Blocks(blocks);
            // Not on a full-sized data segment: its options would push it past the MTU (an ACK is what carries them).
            if (count > 0 && payloadLength + 4 + 8 * count <= _sendMss)
            {
                optionsLength += TcpOptions.WriteSack(options[optionsLength..], blocks[..count]);
            }
        }
        if (!_carrier.Transmit(this, fields, options[..optionsLength], payloadOffset, payloadLength))
        {
            return false;
        }
        _lastAcknowledgementSent = _receiveNext;
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
            return Math.Min(_receive.Free, _carrier.WindowCap);
        }
    }
}
