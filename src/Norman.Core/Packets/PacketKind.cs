namespace Norman.Core.Packets;

/// <summary>What a parsed frame carries at the top layer Norman understood.</summary>
public enum PacketKind : byte
{
    Unknown = 0,
    Arp,
    Udp,
    Tcp,
    Icmp,
    IcmpV6,
    /// <summary>An IP packet of another protocol, or a non-first fragment whose transport header is elsewhere.</summary>
    OtherIp,
}
