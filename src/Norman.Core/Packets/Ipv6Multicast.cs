namespace Norman.Core.Packets;

/// <summary>
/// The IPv6 multicast groups a host's neighbour and router discovery use (RFC 4291), and the Ethernet address each maps
/// to (RFC 2464: 33:33 and the group's last 32 bits).
/// </summary>
public static class Ipv6Multicast
{
    /// <summary>ff02::1: all nodes on the link, where unsolicited advertisements go.</summary>
    public static readonly NetAddress AllNodes = new(0xFF02_0000_0000_0000UL, 1);

    /// <summary>ff02::2: all routers on the link, where router solicitations go.</summary>
    public static readonly NetAddress AllRouters = new(0xFF02_0000_0000_0000UL, 2);

    /// <summary>ff02::1:ffXX:XXXX, where a neighbour solicitation for <paramref name="address"/> is sent.</summary>
    public static NetAddress SolicitedNode(NetAddress address) =>
        new(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (address.Low & 0xFF_FFFF));

    /// <summary>The Ethernet address a multicast group is sent to.</summary>
    public static MacAddress MacOf(NetAddress group) => new(0x3333_0000_0000UL | (group.Low & 0xFFFF_FFFF));
}
