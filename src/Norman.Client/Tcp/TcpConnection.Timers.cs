using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;

namespace Norman.Client.Tcp;

/// <summary>Timers: retransmission, delayed ACK, TIME-WAIT (Linux's tcp_timer.c).</summary>
internal sealed partial class TcpConnection
{
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
}
