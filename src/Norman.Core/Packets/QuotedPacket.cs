using System.Buffers.Binary;

namespace Norman.Core.Packets;

/// <summary>
/// The packet an ICMP or ICMPv6 error quotes (RFC 792: its IP header and at least 8 bytes; RFC 4443: as much as fits),
/// read as far as a flow needs it: a UDP or TCP packet's addresses and ports, and TCP's sequence number. Its sender is
/// the host the error came back to, so <see cref="Source"/> is ours. IPv6 extension headers in the quote are not
/// walked: a segment of ours carries none.
/// </summary>
public readonly record struct QuotedPacket(byte Protocol, NetAddress Source, ushort SourcePort, NetAddress Destination, ushort DestinationPort,
    uint Sequence)
{
    /// <summary>Reads the quote after an error's 8-byte ICMP header; false when it is not a whole UDP or TCP header start.</summary>
    public static bool TryRead(ReadOnlySpan<byte> quoted, out QuotedPacket packet)
    {
        packet = default;
        int headerLength;
        byte protocol;
        NetAddress source, destination;
        if (quoted.Length >= Ipv4Header.Size && quoted[0] >> 4 == 4)
        {
            headerLength = (quoted[0] & 0x0F) * 4;
            protocol = quoted[9];
            source = NetAddress.ReadV4(quoted[12..]);
            destination = NetAddress.ReadV4(quoted[16..]);
        }
        else if (quoted.Length >= Ipv6Header.Size && quoted[0] >> 4 == 6)
        {
            headerLength = Ipv6Header.Size;
            protocol = quoted[6];
            source = Ipv6Header.Source(quoted);
            destination = Ipv6Header.Destination(quoted);
        }
        else
        {
            return false;
        }
        if (headerLength < Ipv4Header.Size || quoted.Length < headerLength + 8 || protocol is not (IpProtocols.Udp or IpProtocols.Tcp))
        {
            return false;
        }
        var transport = quoted[headerLength..];
        packet = new QuotedPacket(protocol, source, BinaryPrimitives.ReadUInt16BigEndian(transport), destination,
            BinaryPrimitives.ReadUInt16BigEndian(transport[2..]), protocol == IpProtocols.Tcp ? BinaryPrimitives.ReadUInt32BigEndian(transport[4..]) : 0);
        return true;
    }
}
