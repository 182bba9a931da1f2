namespace Norman.Core.Packets;

/// <summary>
/// What <see cref="PacketParser"/> learned of one frame: offsets into it and the fields the dataplane matches on.
/// A plain struct, filled in place, so parsing allocates nothing.
/// </summary>
public struct ParsedPacket
{
    public PacketKind Kind;
    /// <summary>4 or 6 for IP packets, 0 otherwise.</summary>
    public byte IpVersion;
    /// <summary>The transport protocol (after IPv6 extension headers).</summary>
    public byte Protocol;
    public bool IsFragment;
    /// <summary>True for a fragment other than the first: it carries no transport header.</summary>
    public bool IsLaterFragment;
    public byte VlanCount;
    public ushort VlanId;
    public ushort EtherType;
    public ushort NetworkOffset;
    public ushort TransportOffset;
    public ushort PayloadOffset;
    /// <summary>The end of the IP packet inside the frame (frames may carry Ethernet padding after it).</summary>
    public ushort PacketEnd;
    public NetAddress Source;
    public NetAddress Destination;
    public ushort SourcePort;
    public ushort DestinationPort;
    public byte IcmpType;
    public byte IcmpCode;
    public byte TcpFlags;
    /// <summary>The DSCP: the top six bits of IPv4's TOS byte or IPv6's traffic class.</summary>
    public byte Dscp;
    /// <summary>The IP packet's length as its header says (IPv4's total length; IPv6's payload length and header): nft's ip length and meta length.</summary>
    public ushort IpTotalLength;

    public readonly int IpLength => PacketEnd - NetworkOffset;
    public readonly int PayloadLength => PacketEnd - PayloadOffset;
}
