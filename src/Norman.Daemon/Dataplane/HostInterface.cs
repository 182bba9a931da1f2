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
    private readonly (NetAddress Address, int PrefixLength)[] _moreAddresses6 = [];
    private readonly NetAddress[] _addresses6 = Address6 is { } first ? [first] : [];
    private readonly (NetAddress Address, int PrefixLength)[] _prefixes6 = Address6 is { } main ? [(main, PrefixLength6)] : [];

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
        get => _moreAddresses6;
        init
        {
            _moreAddresses6 = [.. value];
            _addresses6 = [.. (Address6 is { } first ? new[] { first } : []), .. value.Select(a => a.Address)];
            _prefixes6 = [.. (Address6 is { } main ? new[] { (main, PrefixLength6) } : []), .. value];
        }
    }

    /// <summary>Every IPv6 address of the host, <see cref="Address6"/> first.</summary>
    public IReadOnlyList<NetAddress> Addresses6 => _addresses6;

    /// <summary>The link-local address Linux gives an interface from its MAC (RFC 4291's modified EUI-64): fe80::XXff:feXX:XXXX.</summary>
    public static NetAddress LinkLocalFor(MacAddress mac)
    {
        ulong value = mac.Value;
        ulong eui = ((value >> 24) ^ 0x02_0000UL) << 40 | 0xFF_FEUL << 24 | (value & 0xFF_FFFF);
        return new NetAddress(0xFE80_0000_0000_0000UL, eui);
    }

    /// <summary>True for fe80::/10.</summary>
    public static bool IsLinkLocal(NetAddress address) => SourceChoice6.IsLinkLocal(address);
    /// <summary>The IPv6 wildcard, ::, as a socket bound to any IPv6 address holds it (IPv4's 0.0.0.0 is <c>NetAddress.FromV4(0)</c>).</summary>
    public static readonly NetAddress AnyV6 = default;

    /// <summary>Whether <paramref name="destination"/> is the solicited-node group of one of our IPv6 addresses.</summary>
    public bool IsOurSolicitedNode(NetAddress destination)
    {
        foreach (var address in _addresses6)
        {
            if (destination == SolicitedNode(address))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The solicited-node multicast group of an IPv6 address: where a neighbour solicitation for it is sent.</summary>
    public static NetAddress SolicitedNode(NetAddress address) =>
        new(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (address.Low & 0xFF_FFFF));

    /// <summary>True for the Ethernet multicast groups an IPv6 host listens to: all-nodes and our addresses' solicited-node groups.</summary>
    public bool ListensTo(MacAddress destination)
    {
        if (_addresses6.Length == 0)
        {
            return false;
        }
        if (destination.Value == 0x3333_0000_0001UL)
        {
            return true;
        }
        foreach (var address in _addresses6)
        {
            if (destination.Value == (0x3333_FF00_0000UL | (address.Low & 0xFF_FFFF)))
            {
                return true;
            }
        }
        return false;
    }

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
        if (IsLinkLocal(destination))
        {
            return true;
        }
        if (Address6 is { } ours && SourceChoice6.SamePrefix(destination, ours, PrefixLength6))
        {
            return true;
        }
        foreach (var (address, prefixLength) in _moreAddresses6)
        {
            if (SourceChoice6.SamePrefix(destination, address, prefixLength))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Our address to send to <paramref name="destination"/> from: the IPv4 one; for IPv6 the link-local one to a
    /// link-local destination (RFC 6724's scope rule), else the first whose prefix holds the destination, else the first
    /// global one. Null when the host has none of that family. The client library chooses by the same rule
    /// (<see cref="SourceChoice6"/>), so that what ss shows is what was sent.
    /// </summary>
    public NetAddress? SourceFor(NetAddress destination) => destination.IsV4 ? Address : SourceChoice6.Choose(Prefixes6, destination);

    /// <summary>Every IPv6 address with its prefix, <see cref="Address6"/> first.</summary>
    public IReadOnlyList<(NetAddress Address, int PrefixLength)> Prefixes6 => _prefixes6;

    /// <summary>The link-local address among ours, if the host has one.</summary>
    public NetAddress? LinkLocal6
    {
        get
        {
            foreach (var address in _addresses6)
            {
                if (IsLinkLocal(address))
                {
                    return address;
                }
            }
            return null;
        }
    }

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

    /// <summary>True for an IPv6 multicast address (ff00::/8): it goes to the matching 33:33 Ethernet group, not to a neighbour.</summary>
    public static bool IsMulticast6(NetAddress destination) => !destination.IsV4 && destination.High >> 56 == 0xFF;

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
