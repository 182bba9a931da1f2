using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Norman.Core.Packets;

/// <summary>
/// An IPv4 or IPv6 address as two ulongs, so flow keys compare and hash without branches.
/// IPv4 is held IPv4-mapped (::ffff:a.b.c.d), as Linux's dual-stack sockets show it.
/// </summary>
public readonly record struct NetAddress(ulong High, ulong Low)
{
    private const ulong V4MappedLow = 0x0000_FFFF_0000_0000UL;

    public bool IsV4 => High == 0 && (Low & 0xFFFF_FFFF_0000_0000UL) == V4MappedLow;
    public bool IsUnspecified => High == 0 && (Low == 0 || Low == V4MappedLow);

    /// <summary>fe80::/10, valid on one link only.</summary>
    public bool IsLinkLocal6 => !IsV4 && High >> 54 == 0xFE80 >> 6;

    /// <summary>ff00::/8: an IPv6 multicast group.</summary>
    public bool IsMulticast6 => !IsV4 && High >> 56 == 0xFF;

    /// <summary>The masks of an IPv6 prefix length, for the address's two halves.</summary>
    public static (ulong High, ulong Low) PrefixMask6(int prefixLength) =>
        (prefixLength <= 0 ? 0 : prefixLength >= 64 ? ulong.MaxValue : ulong.MaxValue << (64 - prefixLength),
         prefixLength <= 64 ? 0 : prefixLength >= 128 ? ulong.MaxValue : ulong.MaxValue << (128 - prefixLength));

    /// <summary>Whether this address and <paramref name="other"/> share their first <paramref name="prefixLength"/> bits.</summary>
    public bool SharesPrefix6(NetAddress other, int prefixLength)
    {
        var (maskHigh, maskLow) = PrefixMask6(prefixLength);
        return ((High ^ other.High) & maskHigh) == 0 && ((Low ^ other.Low) & maskLow) == 0;
    }

    /// <summary>The IPv4 address in host order (a.b.c.d = a&lt;&lt;24 | …).</summary>
    public uint V4 => (uint)Low;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NetAddress FromV4(uint hostOrder) => new(0, V4MappedLow | hostOrder);

    public static NetAddress ReadV4(ReadOnlySpan<byte> source) => FromV4(BinaryPrimitives.ReadUInt32BigEndian(source));

    public static NetAddress ReadV6(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt64BigEndian(source[8..]));

    public void WriteV4(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, V4);

    public void WriteV6(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, High);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Low);
    }

    public static NetAddress From(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> v4 = stackalloc byte[4];
            address.TryWriteBytes(v4, out _);
            return ReadV4(v4);
        }
        Span<byte> v6 = stackalloc byte[16];
        address.TryWriteBytes(v6, out _);
        return ReadV6(v6);
    }

    public static NetAddress Parse(string text) =>
        TryParse(text, out var address)
            ? address
            : throw new FormatException($"'{text}' is not an IP address: write it like 198.18.0.1 (four parts) or 2001:db8::1.");

    /// <summary>
    /// An address, strictly: IPv4 as four decimal parts of 0–255 (never "10.0.0", which inet_aton would read as
    /// 10.0.0.0, nor "1.2.3" as 1.2.0.3), IPv6 as IPv6 writes it.
    /// </summary>
    public static bool TryParse(string text, out NetAddress address)
    {
        address = default;
        if (text.Contains(':'))
        {
            if (!IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6 || v6.ScopeId != 0)
            {
                return false;
            }
            address = From(v6);
            return true;
        }
        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }
        uint value = 0;
        foreach (var part in parts)
        {
            if (part.Length is 0 or > 3 || !part.All(char.IsAsciiDigit) || (part.Length > 1 && part[0] == '0') || int.Parse(part, System.Globalization.CultureInfo.InvariantCulture) > 255)
            {
                return false;
            }
            value = (value << 8) | uint.Parse(part, System.Globalization.CultureInfo.InvariantCulture);
        }
        address = FromV4(value);
        return true;
    }

    public IPAddress ToIPAddress()
    {
        if (IsV4)
        {
            return new IPAddress(BinaryPrimitives.ReverseEndianness(V4));
        }
        Span<byte> v6 = stackalloc byte[16];
        WriteV6(v6);
        return new IPAddress(v6);
    }

    public override string ToString() => ToIPAddress().ToString();
}
