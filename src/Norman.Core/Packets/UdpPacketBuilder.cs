namespace Norman.Core.Packets;

/// <summary>
/// Writes the IP and UDP headers in front of a payload that is already in place, so applications build
/// datagrams straight into a pipe slot without a copy. Checksums are complete; UDP's covers the pseudo-header.
/// </summary>
public static class UdpPacketBuilder
{
    public const int HeaderLengthV4 = Ipv4Header.Size + UdpHeader.Size;
    public const int HeaderLengthV6 = Ipv6Header.Size + UdpHeader.Size;

    public static int HeaderLength(NetAddress source) => source.IsV4 ? HeaderLengthV4 : HeaderLengthV6;

    /// <summary>Fills in the headers of a packet whose payload starts at <see cref="HeaderLength"/>; returns the packet's length.</summary>
    public static int WriteHeaders(Span<byte> packet, NetAddress source, ushort sourcePort, NetAddress destination, ushort destinationPort,
        int payloadLength, ushort identification = 0, byte tos = 0)
    {
        int udpLength = UdpHeader.Size + payloadLength;
        if (source.IsV4)
        {
            int total = Ipv4Header.Size + udpLength;
            Ipv4Header.Write(packet, IpProtocols.Udp, source.V4, destination.V4, total, identification, tos: tos);
            var segment = packet.Slice(Ipv4Header.Size, udpLength);
            WriteUdp(segment, sourcePort, destinationPort,
                InternetChecksum.PseudoHeaderV4(source.V4, destination.V4, IpProtocols.Udp, udpLength));
            return total;
        }
        Ipv6Header.Write(packet, IpProtocols.Udp, source, destination, udpLength);
        var segment6 = packet.Slice(Ipv6Header.Size, udpLength);
        WriteUdp(segment6, sourcePort, destinationPort,
            InternetChecksum.PseudoHeaderV6(source, destination, IpProtocols.Udp, udpLength));
        return Ipv6Header.Size + udpLength;
    }

    private static void WriteUdp(Span<byte> segment, ushort sourcePort, ushort destinationPort, ulong pseudoHeader)
    {
        ref var udp = ref UdpHeader.At(segment);
        udp.SourcePort = sourcePort;
        udp.DestinationPort = destinationPort;
        udp.Length = (ushort)segment.Length;
        udp.Checksum = 0;
        udp.Checksum = InternetChecksum.Transport(pseudoHeader, segment, IpProtocols.Udp);
    }
}
