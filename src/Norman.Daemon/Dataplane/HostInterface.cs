using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// The host's own identity on the wire: its MAC, its IPv4 address and prefix, its gateway, and optionally an
/// IPv6 address (for which it answers neighbour solicitations and ping).
/// </summary>
public sealed record HostInterface(MacAddress Mac, NetAddress Address, int PrefixLength, NetAddress? Gateway = null, NetAddress? Address6 = null)
{
    /// <summary>ff02::1:ffXX:XXXX, where neighbours ask for our IPv6 address (RFC 4291).</summary>
    public NetAddress? SolicitedNode6 => Address6 is { } address
        ? new NetAddress(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (address.Low & 0xFF_FFFF))
        : null;

    /// <summary>True for the Ethernet multicast groups an IPv6 host listens to: all-nodes and our solicited-node group.</summary>
    public bool ListensTo(MacAddress destination) =>
        Address6 is { } address && (destination.Value == 0x3333_0000_0001UL || destination.Value == (0x3333_FF00_0000UL | (address.Low & 0xFF_FFFF)));

    public uint Netmask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    public bool IsOnLink(NetAddress destination) => (destination.V4 & Netmask) == (Address.V4 & Netmask);

    public bool IsOurs(NetAddress destination) => destination == Address;

    public bool IsBroadcast(NetAddress destination) =>
        destination.V4 == uint.MaxValue || destination.V4 == ((Address.V4 & Netmask) | ~Netmask);

    /// <summary>Parses "198.18.0.1/24".</summary>
    public static (NetAddress Address, int PrefixLength) ParseCidr(string text)
    {
        var parts = text.Split('/');
        var address = NetAddress.Parse(parts[0]);
        int prefix = 24;
        if (parts.Length > 2 || (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix is < 0 or > 32)) || !address.IsV4)
        {
            throw new FormatException($"'{text}' is not an IPv4 address with a prefix: write it like 198.18.0.1/24.");
        }
        return (address, prefix);
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}
