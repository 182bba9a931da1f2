using System.Collections.Frozen;
using System.Globalization;
using Norman.Core.Packets;

namespace Norman.Daemon.Policy;

/// <summary>What a set holds: IPv4 addresses (nft's ipv4_addr) or ports (inet_service).</summary>
public enum SetKind
{
    Addresses,
    Ports,
}

/// <summary>
/// A named set of addresses or ports, as nft sets and ipset have them: one rule (<c>ip saddr @blocked drop</c>)
/// matches thousands of elements with one hash lookup. The control plane edits it; each change is compiled into a
/// frozen set that the next policy snapshot carries.
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
    public HashSet<uint> Elements { get; } = new();

    public static SetKind ParseKind(string text) => text switch
    {
        "ipv4_addr" => SetKind.Addresses,
        "inet_service" => SetKind.Ports,
        _ => throw new FormatException($"'{text}' is not a set type: use ipv4_addr or inet_service."),
    };

    public string KindName => Kind == SetKind.Addresses ? "ipv4_addr" : "inet_service";

    /// <summary>Reads one element of this set's kind: "198.18.0.9" or "53".</summary>
    public uint ParseElement(string text)
    {
        if (Kind == SetKind.Ports)
        {
            return ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ushort port)
                ? port
                : throw new FormatException($"'{text}' is not a port, and set {Name} holds ports.");
        }
        return System.Net.IPAddress.TryParse(text, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? NetAddress.From(address).V4
            : throw new FormatException($"'{text}' is not an IPv4 address, and set {Name} holds addresses.");
    }

    public string FormatElement(uint element) =>
        Kind == SetKind.Ports ? element.ToString(CultureInfo.InvariantCulture) : NetAddress.FromV4(element).ToString();

    public FrozenSet<uint> Freeze() => Elements.ToFrozenSet();
}
