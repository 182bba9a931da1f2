using System.Globalization;
using Norman.Core.Packets;

namespace Norman.Daemon.Policy;

/// <summary>What a set holds: IPv4 addresses and networks (nft's ipv4_addr), IPv6 ones (ipv6_addr), or ports and port ranges (inet_service).</summary>
public enum SetKind
{
    Addresses,
    Ports,
    Addresses6,
}

/// <summary>
/// A named set of addresses or ports, as nft sets and ipset have them: one rule (<c>ip saddr @blocked drop</c>)
/// matches thousands of elements with one lookup. Elements are single values or intervals: networks
/// (<c>10.0.0.0/8</c>) and port ranges (<c>1000-2000</c>), as nft's interval sets. The control plane edits it; each
/// change is compiled into an <see cref="IntervalSet"/> that the next policy snapshot carries.
/// </summary>
public sealed class NamedSet
{
    public const int MaxElements = 1_000_000;

    public NamedSet(string name, SetKind kind)
    {
        if (name.Length == 0 || name.Length > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
        {
            throw new FormatException($"'{name}' is not a set name: letters, digits, '_' and '-', up to 64.");
        }
        Name = name;
        Kind = kind;
    }

    public string Name { get; }
    public SetKind Kind { get; }
    /// <summary>Elements as inclusive intervals; a single address or port is an interval of one (IPv4 addresses and ports).</summary>
    public HashSet<(uint Start, uint End)> Elements { get; } = new();

    /// <summary>An ipv6_addr set's elements: networks (an address is a /128).</summary>
    public HashSet<Network> Networks6 { get; } = new();

    /// <summary>How many elements the set holds, of whichever kind.</summary>
    public int Count => Kind == SetKind.Addresses6 ? Networks6.Count : Elements.Count;

    public static SetKind ParseKind(string text) => text switch
    {
        "ipv4_addr" => SetKind.Addresses,
        "ipv6_addr" => SetKind.Addresses6,
        "inet_service" => SetKind.Ports,
        _ => throw new FormatException($"'{text}' is not a set type: use ipv4_addr, ipv6_addr or inet_service."),
    };

    public string KindName => KindNameOf(Kind);

    public static string KindNameOf(SetKind kind) => kind switch
    {
        SetKind.Addresses => "ipv4_addr",
        SetKind.Addresses6 => "ipv6_addr",
        _ => "inet_service",
    };

    /// <summary>Reads one element of this set's kind: "198.18.0.9", "10.0.0.0/8", "53" or "1000-2000".</summary>
    public (uint Start, uint End) ParseElement(string text)
    {
        if (Kind == SetKind.Ports)
        {
            var parts = text.Split('-');
            if (parts.Length <= 2 && ushort.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ushort low))
            {
                ushort high = low;
                if (parts.Length == 1 || (ushort.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out high) && high >= low))
                {
                    return (low, high);
                }
            }
            throw new FormatException($"'{text}' is not a port or port range, and set {Name} holds ports.");
        }
        try
        {
            return FilterRuleParser.ParseNetwork(text, v6: false).V4Interval;
        }
        catch (FormatException)
        {
            throw new FormatException($"'{text}' is not an IPv4 address or network, and set {Name} holds addresses.");
        }
    }

    /// <summary>Reads one element of an ipv6_addr set: "2001:db8::9" or "2001:db8::/32".</summary>
    public Network ParseNetwork6(string text)
    {
        try
        {
            return FilterRuleParser.ParseNetwork(text, v6: true);
        }
        catch (FormatException)
        {
            throw new FormatException($"'{text}' is not an IPv6 address or network, and set {Name} holds IPv6 addresses.");
        }
    }

    /// <summary>Adds elements written as the administrator writes them; more than <see cref="MaxElements"/> throws.</summary>
    public void Add(IReadOnlyList<string> elements)
    {
        Change(elements, add: true);
        if (Count > MaxElements)
        {
            throw new FormatException($"Set '{Name}' would hold {Count} elements; the limit is {MaxElements}.");
        }
    }

    /// <summary>Removes elements written as they were added.</summary>
    public void Remove(IReadOnlyList<string> elements) => Change(elements, add: false);

    private void Change(IReadOnlyList<string> elements, bool add)
    {
        foreach (var element in elements)
        {
            _ = Kind == SetKind.Addresses6
                ? add ? Networks6.Add(ParseNetwork6(element)) : Networks6.Remove(ParseNetwork6(element))
                : add ? Elements.Add(ParseElement(element)) : Elements.Remove(ParseElement(element));
        }
    }

    /// <summary>Every element as the administrator writes it, in order.</summary>
    public IEnumerable<string> FormatElements() => Kind == SetKind.Addresses6
        ? Networks6.OrderBy(n => n.Address.High).ThenBy(n => n.Address.Low).ThenBy(n => n.Prefix).Select(n => n.ToString())
        : Elements.Order().Select(FormatElement);

    /// <summary>An ipv6_addr set compiled for lookups.</summary>
    public Prefix6Set Freeze6() => new(Networks6);

    /// <summary>A copy of the set, to change and swap in.</summary>
    public NamedSet Copy()
    {
        var copy = new NamedSet(Name, Kind);
        copy.Elements.UnionWith(Elements);
        copy.Networks6.UnionWith(Networks6);
        return copy;
    }

    public string FormatElement((uint Start, uint End) element)
    {
        if (Kind == SetKind.Ports)
        {
            return new ValueRange((int)element.Start, (int)element.End).ToString();
        }
        uint size = element.End - element.Start;
        int prefix = 32 - System.Numerics.BitOperations.PopCount(size);
        bool block = (size & (size + 1)) == 0 && (element.Start & size) == 0;
        return block ? new Network(NetAddress.FromV4(element.Start), prefix).ToString()
            : $"{NetAddress.FromV4(element.Start)}-{NetAddress.FromV4(element.End)}";
    }

    public IntervalSet Freeze() => new(Elements);
}
