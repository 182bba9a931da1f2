using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// The ones'-complement checksum of RFC 1071, with the IPv4 and IPv6 pseudo-headers that UDP, TCP and ICMPv6 cover.
/// Sums are kept unfolded in a ulong so parts can be added in any order and folded once.
/// </summary>
public static class InternetChecksum
{
    /// <summary>Adds the bytes as big-endian 16-bit words (a trailing odd byte is padded with zero).</summary>
    public static ulong Add(ulong sum, ReadOnlySpan<byte> data)
    {
        // Eight bytes at a time: the ones'-complement sum is endian-independent if folded consistently,
        // so sum native-order 32-bit halves and swap once when folding.
        var words = MemoryMarshal.Cast<byte, uint>(data);
        ulong native = 0;
        foreach (var word in words)
        {
            native += word;
        }
        int tail = words.Length * 4;
        sum += FoldToBigEndian(native);
        if (data.Length - tail >= 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[tail..]);
            tail += 2;
        }
        if (tail < data.Length)
        {
            sum += (ulong)data[tail] << 8;
        }
        return sum;
    }

    public static ushort Fold(ulong sum)
    {
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }

    /// <summary>
    /// The checksum after one 16-bit word it covers changed from <paramref name="oldWord"/> to
    /// <paramref name="newWord"/>, without summing the rest again (RFC 1624: HC' = ~(~HC + ~m + m')).
    /// </summary>
    public static ushort Adjust(ushort checksum, ushort oldWord, ushort newWord) =>
        Fold((ulong)(ushort)~checksum + (ushort)~oldWord + newWord);

    /// <summary>The checksum to store in a header whose checksum field is zero.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Fold(Add(0, data));

    /// <summary>True when data, checksum field included, sums to all ones.</summary>
    public static bool IsValid(ReadOnlySpan<byte> data) => Fold(Add(0, data)) == 0;

    public static ulong PseudoHeaderV4(uint source, uint destination, byte protocol, int length) =>
        (source >> 16) + (source & 0xFFFF) + (destination >> 16) + (destination & 0xFFFF) + protocol + (ulong)length;

    public static ulong PseudoHeaderV6(NetAddress source, NetAddress destination, byte protocol, int length) =>
        Words(source.High) + Words(source.Low) + Words(destination.High) + Words(destination.Low) + protocol + (ulong)length;

    /// <summary>The UDP/TCP/ICMPv6 checksum of a transport segment whose checksum field is zero. UDP sends 0 as 0xFFFF.</summary>
    public static ushort Transport(ulong pseudoHeader, ReadOnlySpan<byte> segment, byte protocol)
    {
        ushort checksum = Fold(Add(pseudoHeader, segment));
        return protocol == IpProtocols.Udp && checksum == 0 ? (ushort)0xFFFF : checksum;
    }

    private static ulong Words(ulong value) => (value >> 48) + ((value >> 32) & 0xFFFF) + ((value >> 16) & 0xFFFF) + (value & 0xFFFF);

    private static ulong FoldToBigEndian(ulong native)
    {
        while ((native >> 16) != 0)
        {
            native = (native & 0xFFFF) + (native >> 16);
        }
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness((ushort)native) : native;
    }

    /// <summary>
    /// True when the UDP or TCP checksum of a parsed packet is right; a UDP checksum of 0 means none, which IPv4
    /// allows and IPv6 does not.
    /// </summary>
    public static bool IsValidTransport(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        var segment = frame[packet.TransportOffset..packet.PacketEnd];
        if (packet.Protocol == IpProtocols.Udp && UdpHeader.At(segment).Checksum == 0)
        {
            return packet.IpVersion == 4;
        }
        ulong pseudo = packet.IpVersion == 4
            ? PseudoHeaderV4(packet.Source.V4, packet.Destination.V4, packet.Protocol, segment.Length)
            : PseudoHeaderV6(packet.Source, packet.Destination, packet.Protocol, segment.Length);
        return Fold(Add(pseudo, segment)) == 0;
    }
}
