using System.Buffers.Binary;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>TCP's states as Linux's conntrack follows them (nf_conntrack_proto_tcp), in its order.</summary>
public enum TcpTrackState : byte
{
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    SynSent2,
}

/// <summary>What one side of a tracked TCP connection has shown: how far it has sent, how far it may, its largest window.</summary>
public struct TcpSide
{
    /// <summary>The highest sequence number it sent, plus one (td_end).</summary>
    public uint End;
    /// <summary>The highest sequence number the other side's window lets it send (td_maxend).</summary>
    public uint MaxEnd;
    /// <summary>The largest window it advertised, scaled (td_maxwin); 0 until it has sent anything.</summary>
    public uint MaxWindow;
    public byte Scale;
    public bool OffersScale;
}

/// <summary>
/// The TCP half of connection tracking, as Linux's nf_conntrack_proto_tcp with be_liberal off and loose pick-up on: a
/// state machine over the segment's flags (SYN, SYN-ACK, FIN, ACK, RST) in each direction, flag combinations no
/// stack sends refused (SYN+FIN, none at all, FIN without ACK, XMAS), and every segment's sequence and
/// acknowledgement checked against the windows each side has shown (tcp_in_window). A segment that fails any of it
/// is <c>invalid</c> and changes nothing. Used by <see cref="Conntrack"/> on the dataplane thread only.
/// </summary>
public static class TcpTracking
{
    /// <summary>The segment's kind, as the state machine reads it (get_conntrack_index).</summary>
    private enum Kind
    {
        Syn,
        SynAck,
        Fin,
        Ack,
        Rst,
        None,
    }

    private const TcpTrackState IV = (TcpTrackState)254; // invalid
    private const TcpTrackState IG = (TcpTrackState)255; // ignored: accepted, state unchanged
    private const TcpTrackState NO = TcpTrackState.None, SS = TcpTrackState.SynSent, SR = TcpTrackState.SynRecv,
        ES = TcpTrackState.Established, FW = TcpTrackState.FinWait, CW = TcpTrackState.CloseWait, LA = TcpTrackState.LastAck,
        TW = TcpTrackState.TimeWait, CL = TcpTrackState.Close, S2 = TcpTrackState.SynSent2;

    /// <summary>
    /// The next state by direction (original, reply), the segment's kind and the current state — the transitions of
    /// Linux's table, one row a kind, one column a state (NO SS SR ES FW CW LA TW CL S2).
    /// </summary>
    private static readonly TcpTrackState[,,] Next =
    {
        {
            { SS, SS, IG, IG, IG, IG, IG, SS, SS, S2 }, // SYN
            { IV, IV, IG, IG, IG, IG, IG, IG, IG, SR }, // SYN-ACK
            { IV, IV, FW, FW, LA, LA, LA, TW, CL, IV }, // FIN
            { ES, IV, ES, ES, CW, CW, TW, TW, CL, IV }, // ACK
            { IV, CL, CL, CL, CL, CL, CL, CL, CL, CL }, // RST
            { IV, IV, IV, IV, IV, IV, IV, IV, IV, IV }, // none of them
        },
        {
            { IV, S2, IV, IV, IV, IV, IV, SS, IV, S2 },
            { IV, SR, IG, IG, IG, IG, IG, IG, IG, SR },
            { IV, IV, FW, FW, LA, LA, LA, TW, CL, IV },
            { IV, IG, SR, ES, CW, CW, TW, TW, CL, IG },
            { IV, CL, CL, CL, CL, CL, CL, CL, CL, CL },
            { IV, IV, IV, IV, IV, IV, IV, IV, IV, IV },
        },
    };

    /// <summary>Linux's MAXACKWINCONST: how far behind an acknowledgement may be, at the least.</summary>
    private const uint MinimumAckWindow = 66000;

    /// <summary>Seconds a connection lives idle in each state (nf_conntrack_tcp_timeout_*).</summary>
    public static int Timeout(TcpTrackState state) => state switch
    {
        SS or S2 => 120,
        SR => 60,
        ES => 432_000,
        FW => 120,
        CW => 60,
        LA => 30,
        TW => 120,
        CL => 10,
        _ => 120,
    };

    public static string Name(TcpTrackState state) => state switch
    {
        SS or S2 => "SYN_SENT",
        SR => "SYN_RECV",
        ES => "ESTABLISHED",
        FW => "FIN_WAIT",
        CW => "CLOSE_WAIT",
        LA => "LAST_ACK",
        TW => "TIME_WAIT",
        CL => "CLOSE",
        _ => "NONE",
    };

    /// <summary>Flag combinations a TCP stack sends (tcp_valid_flags), PSH, ECE and CWR aside; anything else is invalid.</summary>
    public static bool ValidFlags(byte flags)
    {
        int f = flags & (TcpHeader.Fin | TcpHeader.Syn | TcpHeader.Rst | TcpHeader.Ack | 0x20 /* URG */);
        return f is TcpHeader.Syn or (TcpHeader.Syn | 0x20) or (TcpHeader.Syn | TcpHeader.Ack) or TcpHeader.Rst
            or (TcpHeader.Rst | TcpHeader.Ack) or (TcpHeader.Fin | TcpHeader.Ack) or (TcpHeader.Fin | TcpHeader.Ack | 0x20)
            or TcpHeader.Ack or (TcpHeader.Ack | 0x20);
    }

    /// <summary>Whether a segment may open a tracked connection (tcp_new): a SYN, or an ACK picked up mid-stream.</summary>
    public static bool MayOpen(byte flags) => ValidFlags(flags) && Next[0, (int)KindOf(flags), (int)NO] != IV;

    /// <summary>
    /// The segment's effect on a connection in <paramref name="state"/> with sides <paramref name="original"/> and
    /// <paramref name="reply"/>: false when it is invalid (the caller's copies then stay as they were); otherwise the
    /// new state, the sides updated. <paramref name="fromReply"/>: the segment goes the reply way.
    /// </summary>
    public static bool Apply(ref TcpTrackState state, ref TcpSide original, ref TcpSide reply, ReadOnlySpan<byte> frame, in ParsedPacket packet,
        bool fromReply)
    {
        byte flags = packet.TcpFlags;
        if (!ValidFlags(flags))
        {
            return false;
        }
        var kind = KindOf(flags);
        var next = Next[fromReply ? 1 : 0, (int)kind, (int)state];
        if (next == IV)
        {
            return false;
        }
        ref var sender = ref fromReply ? ref reply : ref original;
        ref var receiver = ref fromReply ? ref original : ref reply;
        if (!InWindow(state, ref sender, ref receiver, frame, packet, fromReply))
        {
            return false;
        }
        if (next != IG)
        {
            state = next;
        }
        return true;
    }

    private static Kind KindOf(byte flags) =>
        (flags & TcpHeader.Rst) != 0 ? Kind.Rst
        : (flags & TcpHeader.Syn) != 0 ? (flags & TcpHeader.Ack) != 0 ? Kind.SynAck : Kind.Syn
        : (flags & TcpHeader.Fin) != 0 ? Kind.Fin
        : (flags & TcpHeader.Ack) != 0 ? Kind.Ack
        : Kind.None;

    /// <summary>Linux's tcp_in_window, be_liberal off: the sequence within what the receiver allowed, the acknowledgement within what was sent.</summary>
    private static bool InWindow(TcpTrackState state, ref TcpSide sender, ref TcpSide receiver, ReadOnlySpan<byte> frame, in ParsedPacket packet,
        bool fromReply)
    {
        var tcp = frame[packet.TransportOffset..packet.PacketEnd];
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]);
        uint ack = BinaryPrimitives.ReadUInt32BigEndian(tcp[8..]);
        uint window = BinaryPrimitives.ReadUInt16BigEndian(tcp[14..]);
        byte flags = packet.TcpFlags;
        bool syn = (flags & TcpHeader.Syn) != 0, hasAck = (flags & TcpHeader.Ack) != 0, rst = (flags & TcpHeader.Rst) != 0;
        uint end = seq + (uint)(packet.PacketEnd - packet.PayloadOffset) + (syn ? 1u : 0) + ((flags & TcpHeader.Fin) != 0 ? 1u : 0);

        if (sender.MaxWindow == 0)
        {
            if (syn)
            {
                sender.End = sender.MaxEnd = end;
                sender.MaxWindow = window == 0 ? 1 : window;
                ReadScale(tcp, ref sender);
                if (!hasAck)
                {
                    return true; // the opening SYN: whether scaling holds, the answer will say
                }
                if (!(sender.OffersScale && receiver.OffersScale))
                {
                    sender.Scale = receiver.Scale = 0; // scaling only if both offered it (RFC 7323)
                }
            }
            else
            {
                // Picked up mid-stream (nf_conntrack_tcp_loose): this is all we know of the sender.
                sender.End = end;
                uint scaled = window << sender.Scale;
                sender.MaxWindow = scaled == 0 ? 1 : scaled;
                sender.MaxEnd = end + sender.MaxWindow;
                if (receiver.MaxWindow == 0)
                {
                    receiver.End = receiver.MaxEnd = ack;
                }
            }
        }
        else if (((state == SS && !fromReply) || (state == SR && fromReply)) && After(end, sender.End))
        {
            // A SYN (or SYN-ACK) sent again with a new sequence: start over from it.
            sender.End = sender.MaxEnd = end;
            sender.MaxWindow = window == 0 ? 1 : window;
            ReadScale(tcp, ref sender);
        }
        if (!hasAck || (rst && ack == 0))
        {
            ack = receiver.End;
        }
        if (seq == end && (!rst || (seq == 0 && state == SS)))
        {
            seq = end = sender.End;
        }
        uint ackWindow = Math.Max(sender.MaxWindow, MinimumAckWindow);
        bool ok = Before(seq, sender.MaxEnd + 1)
            && After(end, sender.End - receiver.MaxWindow - 1)
            && Before(ack, receiver.End + 1)
            && After(ack, receiver.End - ackWindow - 1);
        if (!ok)
        {
            return false;
        }
        if (!syn)
        {
            window <<= sender.Scale;
        }
        if (sender.MaxWindow < window)
        {
            sender.MaxWindow = window;
        }
        if (After(end, sender.End))
        {
            sender.End = end;
        }
        if (receiver.MaxWindow != 0 && After(end, sender.MaxEnd))
        {
            receiver.MaxWindow += end - sender.MaxEnd;
        }
        if (After(ack + window, receiver.MaxEnd - 1))
        {
            receiver.MaxEnd = ack + window + (window == 0 ? 1u : 0);
        }
        return true;
    }

    /// <summary>The window scale option of a SYN (the largest is 14).</summary>
    private static void ReadScale(ReadOnlySpan<byte> tcp, ref TcpSide side)
    {
        int headerLength = (tcp[12] >> 4) * 4;
        var offered = TcpOptions.Read(tcp[TcpHeader.Size..Math.Min(headerLength, tcp.Length)]).WindowScale;
        side.Scale = Math.Min(offered ?? 0, (byte)14);
        side.OffersScale = offered is not null;
    }

    private static bool Before(uint a, uint b) => (int)(a - b) < 0;

    private static bool After(uint a, uint b) => (int)(a - b) > 0;
}
