using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// The host's own identity on the wire: its MAC, its IPv4 address and prefix, its gateway, and optionally IPv6
/// addresses — the first (<see cref="Address6"/>) and <see cref="MoreAddresses6"/>, a link-local one among them — with
/// their prefixes and a gateway, for which it does neighbour discovery and ping and carries UDP and TCP.
/// </summary>
public sealed record HostInterface(MacAddress Mac, NetAddress Address, int PrefixLength, NetAddress? Gateway = null, NetAddress? Address6 = null,
    int PrefixLength6 = 64, NetAddress? Gateway6 = null)
{
    /// <summary>Every IPv6 address with its prefix, <see cref="Address6"/> first; and the addresses alone, for the per-packet checks.</summary>
    private readonly (NetAddress Address, int PrefixLength)[] _prefixes6 = Address6 is { } first ? [(first, PrefixLength6)] : [];
    private readonly NetAddress[] _addresses6 = Address6 is { } main ? [main] : [];

    /// <summary>
    /// Whether router advertisements set the IPv6 default route (Linux's accept_ra), when no --gateway6 does: the host
    /// solicits them at start and takes the last router that advertised a lifetime as <see cref="Router6"/>.
    /// </summary>
    public bool AcceptsRouterAdvertisements { get; init; }

    /// <summary>The default router learned from advertisements (a link-local address); written and read on the dataplane thread.</summary>
    public NetAddress? Router6 { get; set; }

    /// <summary>IPv6 addresses beyond <see cref="Address6"/>, each with its prefix (a second --address6, the link-local one).</summary>
    public IReadOnlyList<(NetAddress Address, int PrefixLength)> MoreAddresses6
    {
        get => _prefixes6[(Address6 is null ? 0 : 1)..];
        init
        {
            _prefixes6 = [.. _prefixes6, .. value];
            _addresses6 = [.. _prefixes6.Select(a => a.Address)];
        }
    }

    /// <summary>Every IPv6 address of the host, <see cref="Address6"/> first.</summary>
    public IReadOnlyList<NetAddress> Addresses6 => _addresses6;

    /// <summary>Every IPv6 address with its prefix, <see cref="Address6"/> first.</summary>
    public IReadOnlyList<(NetAddress Address, int PrefixLength)> Prefixes6 => _prefixes6;

    /// <summary>The IPv6 wildcard, ::, as a socket bound to any IPv6 address holds it (IPv4's 0.0.0.0 is <c>NetAddress.FromV4(0)</c>).</summary>
    public static readonly NetAddress AnyV6 = default;

    /// <summary>The link-local address Linux gives an interface from its MAC (RFC 4291's modified EUI-64): fe80::XXff:feXX:XXXX.</summary>
    public static NetAddress LinkLocalFor(MacAddress mac)
    {
        ulong value = mac.Value;
        ulong eui = ((value >> 24) ^ 0x02_0000UL) << 40 | 0xFF_FEUL << 24 | (value & 0xFF_FFFF);
        return new NetAddress(0xFE80_0000_0000_0000UL, eui);
    }

    /// <summary>The link-local address among ours, if the host has one.</summary>
    public NetAddress? LinkLocal6
    {
        get
        {
            foreach (var address in _addresses6)
            {
                if (address.IsLinkLocal6)
                {
                    return address;
                }
            }
            return null;
        }
    }

    /// <summary>Whether <paramref name="destination"/> is the solicited-node group of one of our IPv6 addresses.</summary>
    public bool IsOurSolicitedNode(NetAddress destination)
    {
        foreach (var address in _addresses6)
        {
            if (destination == Ipv6Multicast.SolicitedNode(address))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>True for the Ethernet multicast groups an IPv6 host listens to: all-nodes and our addresses' solicited-node groups.</summary>
    public bool ListensTo(MacAddress destination)
    {
        if (_addresses6.Length == 0)
        {
            return false;
        }
        if (destination == Ipv6Multicast.MacOf(Ipv6Multicast.AllNodes))
        {
            return true;
        }
        foreach (var address in _addresses6)
        {
            if (destination == Ipv6Multicast.MacOf(Ipv6Multicast.SolicitedNode(address)))
            {
                return true;
            }
        }
        return false;
    }

    public uint Netmask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    /// <summary>
    /// Whether a destination is on our link, reached without a gateway: in our IPv4 subnet, or in one of our IPv6
    /// prefixes or link-local (fe80::/10), as the kernel's connected routes say.
    /// </summary>
    public bool IsOnLink(NetAddress destination)
    {
        if (destination.IsV4)
        {
            return (destination.V4 & Netmask) == (Address.V4 & Netmask);
        }
        if (destination.IsLinkLocal6)
        {
            return true;
        }
        foreach (var (address, prefixLength) in _prefixes6)
        {
            if (destination.SharesPrefix6(address, prefixLength))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Our address to send to <paramref name="destination"/> from: the IPv4 one; for IPv6 as <see cref="SourceChoice6"/>
    /// chooses, the rule the client library follows too, so that what ss shows is what was sent. Null when the host has
    /// none of that family.
    /// </summary>
    public NetAddress? SourceFor(NetAddress destination) => destination.IsV4 ? Address : SourceChoice6.Choose(_prefixes6, destination);

    /// <summary>The gateway for a destination off the link, of its family.</summary>
    public NetAddress? GatewayFor(NetAddress destination) => destination.IsV4 ? Gateway : Gateway6 ?? Router6;

    public bool IsOurs(NetAddress destination)
    {
        if (destination == Address)
        {
            return true;
        }
        foreach (var address in _addresses6)
        {
            if (destination == address)
            {
                return true;
            }
        }
        return false;
    }

    public bool IsBroadcast(NetAddress destination) =>
        destination.IsV4 && (destination.V4 == uint.MaxValue || destination.V4 == ((Address.V4 & Netmask) | ~Netmask));

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
            || (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix is < 1 or > 128)) || address.IsMulticast6)
        {
            throw new FormatException($"'{text}' is not an IPv6 unicast address with a prefix: write it like fd66::1/64.");
        }
        return (address, prefix);
    }

    public override string ToString() => $"{Address}/{PrefixLength}";
}
