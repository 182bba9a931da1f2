namespace Norman.Core.Packets;

/// <summary>
/// The IPv6 host's own messages: neighbour advertisements answering solicitations (RFC 4861) and echo replies.
/// <code>
///  NS/NA: type(135/136) code checksum | flags(R S O) reserved (4) | target address (16) | option: type len MAC
/// </code>
/// </summary>
public static class Icmpv6Frames
{
    public const byte NeighbourSolicitation = 135;
    public const byte NeighbourAdvertisement = 136;
    private const byte SolicitedFlag = 0x40, OverrideFlag = 0x20;
    private const int NdMessageLength = 24;

    /// <summary>The target of a neighbour solicitation, or null when the message is too short to be one.</summary>
    public static NetAddress? SolicitedTarget(ReadOnlySpan<byte> frame, in ParsedPacket packet) =>
        packet.PacketEnd - packet.TransportOffset >= NdMessageLength && packet.IcmpType == NeighbourSolicitation && packet.IcmpCode == 0
            ? NetAddress.ReadV6(frame[(packet.TransportOffset + 8)..])
            : null;

    /// <summary>Answers a solicitation for <paramref name="ourAddress"/> with a solicited, overriding advertisement.</summary>
    public static int Advertisement(ReadOnlySpan<byte> solicitation, in ParsedPacket packet, Span<byte> frame, MacAddress ourMac, NetAddress ourAddress)
    {
        // A solicitation from the unspecified address (duplicate address detection) is answered to all nodes.
        var destination = packet.Source.High == 0 && packet.Source.Low == 0 ? new NetAddress(0xFF02_0000_0000_0000UL, 1) : packet.Source;
        const int icmpLength = NdMessageLength + 8;
        EthernetHeader.Write(frame, EthernetHeader.Source(solicitation), ourMac, EtherTypes.IPv6);
        var ip = frame[EthernetHeader.Size..];
        Ipv6Header.Write(ip, IpProtocols.IcmpV6, ourAddress, destination, icmpLength, hopLimit: 255);
        var icmp = ip.Slice(Ipv6Header.Size, icmpLength);
        icmp.Clear();
        icmp[0] = NeighbourAdvertisement;
        icmp[4] = (byte)(SolicitedFlag | OverrideFlag);
        ourAddress.WriteV6(icmp[8..]);
        icmp[24] = 2; // target link-layer address
        icmp[25] = 1; // in units of 8 bytes
        ourMac.Write(icmp[26..]);
        WriteChecksum(icmp, ourAddress, destination);
        return EthernetHeader.Size + Ipv6Header.Size + icmpLength;
    }

    /// <summary>Turns an ICMPv6 echo request into its reply.</summary>
    public static int EchoReply(ReadOnlySpan<byte> request, in ParsedPacket packet, Span<byte> frame, MacAddress ourMac)
    {
        int icmpLength = packet.PacketEnd - packet.TransportOffset;
        EthernetHeader.Write(frame, EthernetHeader.Source(request), ourMac, EtherTypes.IPv6);
        var ip = frame[EthernetHeader.Size..];
        Ipv6Header.Write(ip, IpProtocols.IcmpV6, packet.Destination, packet.Source, icmpLength);
        var icmp = ip.Slice(Ipv6Header.Size, icmpLength);
        request.Slice(packet.TransportOffset, icmpLength).CopyTo(icmp);
        icmp[0] = IcmpHeader.EchoReplyV6;
        WriteChecksum(icmp, packet.Destination, packet.Source);
        return EthernetHeader.Size + Ipv6Header.Size + icmpLength;
    }

    private static void WriteChecksum(Span<byte> icmp, NetAddress source, NetAddress destination)
    {
        ref var header = ref IcmpHeader.At(icmp);
        header.Checksum = 0;
        header.Checksum = InternetChecksum.Transport(InternetChecksum.PseudoHeaderV6(source, destination, IpProtocols.IcmpV6, icmp.Length), icmp, IpProtocols.IcmpV6);
    }
}
