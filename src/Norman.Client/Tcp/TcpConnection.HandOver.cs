using Norman.Core.Packets;
using Norman.Core.Protocol;

namespace Norman.Client.Tcp;

/// <summary>
/// A connection made and not yet accepted, handed from the program that exec'd to the program it became: Linux keeps
/// such connections in the listener's queue across exec, here they live in the exec'ing program's stack, so it writes
/// down what resumes one (<see cref="HandOver"/>) and the new program's stack takes it up (<see cref="Resume"/>).
/// </summary>
internal sealed partial class TcpConnection
{
    /// <summary>
    /// What resumes this connection elsewhere, or null when it cannot be: not established (or past the peer's FIN), data
    /// in flight or written, more received than <paramref name="maxReceived"/>. On the loop thread.
    /// Out-of-order segments held are left behind: they were not acknowledged, and come again.
    /// </summary>
    public HandedOverConnection? HandOver(int maxReceived = HandedOverConnection.MaxReceivedBytes)
    {
        if (State is not (TcpState.Established or TcpState.CloseWait) || _sendUnacknowledged != _sendNext || _finRequested || _error is not null)
        {
            return null;
        }
        byte[] received;
        lock (_send)
        {
            if (_send.Count > 0)
            {
                return null;
            }
        }
        lock (_receive)
        {
            if (_receive.Count > maxReceived)
            {
                return null;
            }
            received = new byte[_receive.Count];
            _receive.Peek(0, received);
        }
        return new HandedOverConnection
        {
            LocalAddress = LocalAddress.ToString(),
            RemoteAddress = RemoteAddress.ToString(),
            RemotePort = RemotePort,
            SendNext = _sendNext,
            SendWindow = _sendWindow,
            MaxSendWindow = _maxSendWindow,
            SendWindowUpdateSequence = _sendWindowUpdateSequence,
            SendWindowUpdateAck = _sendWindowUpdateAck,
            SendWindowScale = _sendWindowScale,
            SendMss = _sendMss,
            ReceiveNext = _receiveNext,
            AdvertisedEdge = _advertisedEdge,
            ReceiveWindowScale = _receiveWindowScale,
            Timestamps = _timestamps,
            TimestampRecent = _timestampRecent,
            TimestampOrigin = _timestampOrigin,
            Sack = _sack,
            FinReceived = _finReceived,
            Received = received,
        };
    }

    /// <summary>Bytes written and not yet acknowledged by the peer (or not yet sent): the connection cannot be handed over until they are.</summary>
    public bool HasUnacknowledgedBytes
    {
        get
        {
            lock (_send)
            {
                return _sendUnacknowledged != _sendNext || _send.Count > 0;
            }
        }
    }

    /// <summary>
    /// A connection another program's stack handed over (<see cref="HandOver"/>), established (or in CLOSE-WAIT) and
    /// waiting to be accepted, as it was there. Throws FormatException for a handover that does not hold together.
    /// </summary>
    public static TcpConnection Resume(ITcpCarrier carrier, HandedOverConnection handed)
    {
        if (handed.RemotePort is <= 0 or > ushort.MaxValue || handed.SendMss is < 64 or > ushort.MaxValue
            || handed.SendWindowScale is < 0 or > 14 || handed.ReceiveWindowScale is < 0 or > 14
            || handed.Received.Length > HandedOverConnection.MaxClaimedBytes || handed.SendWindow < 0 || handed.MaxSendWindow < handed.SendWindow)
        {
            throw new FormatException("A handed-over connection out of range.");
        }
        var connection = new TcpConnection(carrier, NetAddress.Parse(handed.RemoteAddress), (ushort)handed.RemotePort, NetAddress.Parse(handed.LocalAddress));
        connection._iss = handed.SendNext - 1;
        connection._sendUnacknowledged = connection._sendNext = connection._sendMax = handed.SendNext;
        connection._sendWindow = handed.SendWindow;
        connection._maxSendWindow = handed.MaxSendWindow;
        connection._sendWindowUpdateSequence = handed.SendWindowUpdateSequence;
        connection._sendWindowUpdateAck = handed.SendWindowUpdateAck;
        connection._sendWindowScale = handed.SendWindowScale;
        connection._sendMss = handed.SendMss;
        connection._receiveNext = handed.ReceiveNext;
        connection._irs = handed.ReceiveNext - 1 - (uint)handed.Received.Length;
        connection._advertisedEdge = handed.AdvertisedEdge;
        connection._lastAcknowledgementSent = handed.ReceiveNext;
        connection._receiveWindowScale = handed.ReceiveWindowScale;
        connection._offerWindowScale = handed.ReceiveWindowScale > 0;
        connection._timestamps = connection._offerTimestamps = handed.Timestamps;
        connection._timestampRecent = handed.TimestampRecent;
        connection._timestampOrigin = handed.TimestampOrigin;
        connection._sack = connection._offerSack = handed.Sack;
        connection._finReceived = handed.FinReceived;
        connection._receive.Write(handed.Received);
        connection.State = handed.FinReceived ? TcpState.CloseWait : TcpState.Established;
        connection._established.TrySetResult();
        return connection;
    }
}
