using System.Globalization;
using System.Text;
using Norman.Core.Packets;

namespace Norman.Daemon.Policy;

/// <summary>An inclusive range of numbers (ports, lengths, types); a single value is a range of one.</summary>
public readonly record struct ValueRange(int Low, int High)
{
    public bool Contains(int value) => value >= Low && value <= High;

    public override string ToString() => Low == High
        ? Low.ToString(CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"{Low}-{High}");
}

/// <summary>
/// A match on a number of the packet (a port, the protocol, a length, a DSCP, an ICMP type): one value or range, an
/// anonymous set of them (<c>{ 53, 123, 1000-2000 }</c>), or a named set (<c>@web</c>); <c>!=</c> negates it.
/// </summary>
public sealed record RangeMatch(bool Negate, string? SetName, ValueList<ValueRange> Ranges)
{
    public static RangeMatch Of(int low, int high) => new(false, null, new ValueList<ValueRange>([new ValueRange(low, high)]));

    /// <summary>The value as nft writes it, each element through <paramref name="name"/> (a port number, a type's name).</summary>
    public string Format(Func<ValueRange, string> name)
    {
        string value = SetName is not null ? "@" + SetName
            : Ranges.Count == 1 ? name(Ranges[0])
            : "{ " + string.Join(", ", Ranges.Select(name)) + " }";
        return Negate ? "!= " + value : value;
    }

    public override string ToString() => Format(r => r.ToString());
}

/// <summary>A network: an address and how many of its leading bits count.</summary>
public readonly record struct Network(NetAddress Address, int Prefix)
{
    public bool IsV4 => Address.IsV4;

    /// <summary>An IPv4 network's first and last address.</summary>
    public (uint Start, uint End) V4Interval => (Address.V4, Address.V4 | (uint)(0xFFFF_FFFFUL >> Prefix));

    public override string ToString() => IsV4 && Prefix == 32 || !IsV4 && Prefix == 128
        ? Address.ToString()
        : string.Create(CultureInfo.InvariantCulture, $"{Address}/{Prefix}");
}

/// <summary>
/// A match on an address: one network, an anonymous set of them, or a named set (<paramref name="SetIsV6"/>: an
/// ipv6_addr set, named after ip6); <c>!=</c> negates it.
/// </summary>
public sealed record AddressMatch(bool Negate, string? SetName, ValueList<Network> Networks, bool SetIsV6 = false)
{
    /// <summary>IPv6 networks or an ipv6_addr set (an ip6 match), or IPv4 ones and ipv4_addr sets (an ip match).</summary>
    public bool IsV6 => SetIsV6 || (Networks.Count > 0 && !Networks[0].IsV4);

    public override string ToString()
    {
        string value = SetName is not null ? "@" + SetName
            : Networks.Count == 1 ? Networks[0].ToString()
            : "{ " + string.Join(", ", Networks) + " }";
        return Negate ? "!= " + value : value;
    }
}

/// <summary>How a TCP flags match tests the flags.</summary>
public enum TcpFlagsTest
{
    /// <summary><c>tcp flags fin,rst</c>: any of these is set (as nft reads a list of flags).</summary>
    Any,
    /// <summary><c>tcp flags syn / syn,ack</c>, <c>tcp flags &amp; (syn|ack) == syn</c>, <c>tcp flags == syn</c>: the flags under the mask are exactly these.</summary>
    Masked,
}

/// <summary>
/// A TCP flags match, in nft's meanings (as <c>nft --debug=netlink</c> shows them compiled): a list is any of the
/// flags; <c>==</c> and <c>!=</c> compare the whole byte; a mask compares the flags under it.
/// </summary>
public sealed record TcpFlagsMatch(TcpFlagsTest Test, byte Value, byte Mask, bool Negate)
{
    public bool Matches(byte flags)
    {
        bool hit = Test == TcpFlagsTest.Any ? (flags & Mask) != 0 : (flags & Mask) == Value;
        return hit != Negate;
    }

    public override string ToString()
    {
        return Test switch
        {
            TcpFlagsTest.Any => $"tcp flags {Names(Mask)}",
            _ when Mask == 0xFF => $"tcp flags {(Negate ? "!=" : "==")} {Names(Value)}",
            _ when !Negate => $"tcp flags {Names(Value)} / {Names(Mask)}",
            _ => $"tcp flags & ({Names(Mask, '|')}) != {Names(Value, '|')}",
        };
    }

    public static readonly (string Name, byte Bit)[] Bits =
        [("fin", 0x01), ("syn", 0x02), ("rst", 0x04), ("psh", 0x08), ("ack", 0x10), ("urg", 0x20), ("ecn", 0x40), ("cwr", 0x80)];

    public static string Names(byte flags, char separator = ',')
    {
        var text = new StringBuilder();
        foreach (var (name, bit) in Bits)
        {
            if ((flags & bit) != 0)
            {
                text.Append(text.Length > 0 ? separator.ToString() : "").Append(name);
            }
        }
        return text.Length == 0 ? "0x0" : text.ToString();
    }
}
