using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;

namespace Norman.Client.Tcp;

/// <summary>Timers: retransmission, the persist timer's zero-window probes, delayed ACK, TIME-WAIT and an orphan's FIN-WAIT-2 (Linux's tcp_timer.c).</summary>
internal sealed partial class TcpConnection
{
    public void OnTimers(long now)
    {
        if (CloseAt != 0 && now >= CloseAt)
        {
            CloseAt = 0;
            Close(); // TIME-WAIT is over, or an orphan's peer never sent its FIN: gone without a word, as Linux's
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
        if (ProbeAt != 0 && now >= ProbeAt)
        {
            OnProbeTimeout(now);
        }
    }

    /// <summary>
    /// The persist timer (RFC 9293 §3.8.6.1): the peer's window is shut and our data waits. A probe is a segment one
    /// below SND.UNA without data, as Linux's tcp_xmit_probe_skb: old for the peer, so it answers with its window, and
    /// no byte is spent that a shut receiver would discard. Probes back off to two minutes and never count as
    /// retransmissions: the connection lives as long as the peer answers them, and gives up after
    /// <see cref="TcpLimits.MaximumUnansweredProbes"/> unanswered in a row. When the window opens, data goes at once.
    /// </summary>
    private void OnProbeTimeout(long now)
    {
        ProbeAt = 0;
        if (_sendWindow != 0 || _sendNext != _sendUnacknowledged
            || State is not (TcpState.Established or TcpState.CloseWait or TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck))
        {
            Output(now);
            return;
        }
        if (++_unansweredProbes > TcpLimits.MaximumUnansweredProbes)
        {
            Fail(new NormanException("ETIMEDOUT", $"Connection to {RemoteAddress}:{RemotePort} timed out: its window stayed shut and " +
                $"{TcpLimits.MaximumUnansweredProbes} probes went unanswered."), reset: true);
            return;
        }
        Transmit(TcpHeader.Ack, _sendUnacknowledged - 1, 0, 0);
        _probeBackoff = Math.Min(_probeBackoff + 1, 16);
        ArmProbe(now);
    }

    private void ArmProbe(long now)
    {
        ProbeAt = now + Math.Min(_rtt.TimeoutTicks << _probeBackoff, TcpLimits.MaximumProbeIntervalTicks);
        _carrier.Timed(this);
    }

    /// <summary>An orphan (see <see cref="Orphan"/>) in FIN-WAIT-2 waits for the peer's FIN only so long (tcp_fin_timeout).</summary>
    private void LimitOrphanedFinWait2(long now)
    {
        if (State == TcpState.FinWait2 && Volatile.Read(ref _orphaned) && CloseAt == 0)
        {
            CloseAt = now + TcpLimits.FinWait2Ticks;
            _carrier.Timed(this);
        }
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
            SendSyn(State == TcpState.SynSent ? TcpHeader.Syn : (byte)(TcpHeader.Syn | TcpHeader.Ack), now);
            ArmRetransmit(now);
            return;
        }
        uint inFlight = _sendNext - _sendUnacknowledged;
        if (inFlight == 0)
        {
            DisarmRetransmit();
            Output(now);
            return;
        }
        if (_sendWindow == 0 && !(_finSent && inFlight == 1))
        {
            // The peer shut its window with our data in flight: what we sent again would only be dropped. Take it
            // back and let the persist timer probe, without counting a retransmission (Linux does the same).
            _sendNext = _sendUnacknowledged;
            _finSent = false;
            DisarmRetransmit();
            Output(now);
            return;
        }
        if (++_retries > DataRetries)
        {
            Fail(new NormanException("ETIMEDOUT", $"Connection to {RemoteAddress}:{RemotePort} timed out: no acknowledgement after {DataRetries} retransmissions."), reset: true);
            return;
        }
        _congestion.OnTimeout(inFlight);
        _scoreboard.Clear(); // go back N: the peer may have let go of what it SACKed (RFC 2018 §8)
        _duplicateAcks = 0;
        // Go back N: everything after the first unacknowledged byte is sent again, in slow start (RFC 5681 §3.1).
        _sendNext = _sendUnacknowledged;
        _finSent = false;
        Output(now);
        ArmRetransmit(now);
    }

    private void ArmRetransmit(long now)
    {
        RetransmitAt = now + _rtt.TimeoutTicks;
        _carrier.Timed(this);
    }

    private void DisarmRetransmit() => RetransmitAt = 0;

    private void EnterTimeWait(long now)
    {
        DisarmRetransmit();
        ProbeAt = 0;
        CloseAt = now + TimeWaitTicks;
        _carrier.Timed(this);
    }
}
