using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// The host's own identity on the wire: its MAC, its IPv4 address and prefix, its gateway, and optionally an IPv6
/// address with its prefix and gateway (for which it answers neighbour discovery and ping, and carries UDP).
/// </summary>
public sealed record HostInterface(MacAddress Mac, NetAddress Address, int PrefixLength, NetAddress? Gateway = null, NetAddress? Address6 = null,
    int PrefixLength6 = 64, NetAddress? Gateway6 = null)
{
    /// <summary>The IPv6 wildcard, ::, as a socket bound to any IPv6 address holds it (IPv4's 0.0.0.0 is <c>NetAddress.FromV4(0)</c>).</summary>
    public static readonly NetAddress AnyV6 = default;

    /// <summary>ff02::1:ffXX:XXXX, where neighbours ask for our IPv6 address (RFC 4291).</summary>
    public NetAddress? SolicitedNode6 => Address6 is { } address ? SolicitedNode(address) : null;

    /// <summary>The solicited-node multicast group of an IPv6 address: where a neighbour solicitation for it is sent.</summary>
    public static NetAddress SolicitedNode(NetAddress address) =>
        new(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (address.Low & 0xFF_FFFF));

    /// <summary>True for the Ethernet multicast groups an IPv6 host listens to: all-nodes and our solicited-node group.</summary>
    public bool ListensTo(MacAddress destination) =>
        Address6 is { } address && (destination.Value == 0x3333_0000_0001UL || destination.Value == (0x3333_FF00_0000UL | (address.Low & 0xFF_FFFF)));

    public uint Netmask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    /// <summary>
    /// Whether a destination is on our link, reached without a gateway: in our IPv4 subnet, or in our IPv6 prefix or
    /// link-local (fe80::/10), as the kernel's connected routes say.
    /// </summary>
    public bool IsOnLink(NetAddress destination)
    {
        if (destination.IsV4)
        {
            return (destination.V4 & Netmask) == (Address.V4 & Netmask);
        }
        if (destination.High >> 54 == 0xFE80 >> 6)
        {
            return true;
        }
        return Address6 is { } ours && SamePrefix(destination, ours, PrefixLength6);
    }

    /// <summary>Our address of the destination's family; null when the host has none (IPv6 without --address6).</summary>
    public NetAddress? SourceFor(NetAddress destination) => destination.IsV4 ? Address : Address6;

    /// <summary>The gateway for a destination off the link, of its family.</summary>
    public NetAddress? GatewayFor(NetAddress destination) => destination.IsV4 ? Gateway : Gateway6;

    public bool IsOurs(NetAddress destination) => destination == Address || (Address6 is { } ours && destination == ours);

    public bool IsBroadcast(NetAddress destination) =>
        destination.IsV4 && (destination.V4 == uint.MaxValue || destination.V4 == ((Address.V4 & Netmask) | ~Netmask));

    /// <summary>True for an IPv6 multicast address (ff00::/8): it goes to the matching 33:33 Ethernet group, not to a neighbour.</summary>
    public static bool IsMulticast6(NetAddress destination) => !destination.IsV4 && destination.High >> 56 == 0xFF;

    private static bool SamePrefix(NetAddress a, NetAddress b, int prefixLength)
    {
        ulong highMask = prefixLength >= 64 ? ulong.MaxValue : prefixLength == 0 ? 0 : ulong.MaxValue << (64 - prefixLength);
        ulong lowMask = prefixLength <= 64 ? 0 : prefixLength >= 128 ? ulong.MaxValue : ulong.MaxValue << (128 - prefixLength);
        return ((a.High ^ b.High) & highMask) == 0 && ((a.Low ^ b.Low) & lowMask) == 0;
    }

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

    /// <summary>Parses "fd66::1/64" (the prefix defaults to 64, as a SLAAC subnet's).</summary>
    public static (NetAddress Address, int PrefixLength) ParseCidr6(string text)
    {
        var parts = text.Split('/');
        int prefix = 64;
        if (parts.Length > 2 || !NetAddress.TryParse(parts[0], out var address) || address.IsV4 || address.IsUnspecified
            || (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix is < 1 or > 128)) || IsMulticast6(address))
        {
            throw new FormatException($"'{text}' is not an IPv6 unicast address with a prefix: write it like fd66::1/64.");
        }
        return (address, prefix);
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}
