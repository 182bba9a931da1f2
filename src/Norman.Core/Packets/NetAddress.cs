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
        IPAddress.TryParse(text, out var address)
            ? From(address)
            : throw new FormatException($"'{text}' is not an IP address: write it like 198.18.0.1 or 2001:db8::1.");

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
