namespace Norman.Core.Packets;

/// <summary>
/// Builds the frames a host sends on its own behalf: ARP requests and replies, ICMP echo replies,
/// ICMP port unreachable. Each writes into a caller's buffer and returns the frame length.
/// </summary>
public static class ControlFrames
{
    public const int ArpFrameLength = EthernetHeader.Size + ArpPacket.Size;
    /// <summary>Ethernet's minimum frame (without FCS); shorter frames are padded with zeros as a NIC would.</summary>
    public const int MinimumFrameLength = 60;

    public static int ArpRequest(Span<byte> frame, MacAddress ourMac, NetAddress ourIp, NetAddress targetIp)
    {
        EthernetHeader.Write(frame, MacAddress.Broadcast, ourMac, EtherTypes.Arp);
        ArpPacket.Write(frame[EthernetHeader.Size..], ArpPacket.Request, ourMac, ourIp, MacAddress.Zero, targetIp);
        return Pad(frame, ArpFrameLength);
    }

    public static int ArpReply(Span<byte> frame, MacAddress ourMac, NetAddress ourIp, MacAddress askerMac, NetAddress askerIp)
    {
        EthernetHeader.Write(frame, askerMac, ourMac, EtherTypes.Arp);
        ArpPacket.Write(frame[EthernetHeader.Size..], ArpPacket.Reply, ourMac, ourIp, askerMac, askerIp);
        return Pad(frame, ArpFrameLength);
    }

    /// <summary>Turns an ICMPv4 echo request, parsed in <paramref name="request"/>, into its reply in <paramref name="reply"/>.</summary>
    public static int EchoReplyV4(ReadOnlySpan<byte> request, in ParsedPacket parsed, Span<byte> reply, MacAddress ourMac)
    {
        int icmpLength = parsed.PacketEnd - parsed.TransportOffset;
        int length = EthernetHeader.Size + Ipv4Header.Size + icmpLength;
        EthernetHeader.Write(reply, EthernetHeader.Source(request), ourMac, EtherTypes.IPv4);
        var ip = reply[EthernetHeader.Size..];
        Ipv4Header.Write(ip, IpProtocols.Icmp, parsed.Destination.V4, parsed.Source.V4, Ipv4Header.Size + icmpLength,
            Ipv4Header.At(request[parsed.NetworkOffset..]).Identification);
        var icmp = ip.Slice(Ipv4Header.Size, icmpLength);
        request.Slice(parsed.TransportOffset, icmpLength).CopyTo(icmp);
        ref var header = ref IcmpHeader.At(icmp);
        header.Type = IcmpHeader.EchoReplyV4;
        header.Checksum = 0;
        header.Checksum = InternetChecksum.Compute(icmp);
        return Pad(reply, length);
    }

    /// <summary>ICMPv4 destination unreachable (port unreachable) quoting the offending IP header and 8 bytes, as RFC 792 asks.</summary>
    public static int PortUnreachableV4(ReadOnlySpan<byte> offending, in ParsedPacket parsed, Span<byte> frame, MacAddress ourMac) =>
        DestinationUnreachableV4(offending, parsed, frame, ourMac, IcmpHeader.PortUnreachableCode);

    /// <summary>ICMPv4 destination unreachable with <paramref name="code"/> (0 net, 1 host, 2 protocol, 3 port, 13 administratively prohibited).</summary>
    public static int DestinationUnreachableV4(ReadOnlySpan<byte> offending, in ParsedPacket parsed, Span<byte> frame, MacAddress ourMac, byte code)
    {
        int quoted = Math.Min(parsed.PacketEnd - parsed.NetworkOffset, (parsed.TransportOffset - parsed.NetworkOffset) + 8);
        int icmpLength = IcmpHeader.Size + quoted;
        EthernetHeader.Write(frame, EthernetHeader.Source(offending), ourMac, EtherTypes.IPv4);
        var ip = frame[EthernetHeader.Size..];
        Ipv4Header.Write(ip, IpProtocols.Icmp, parsed.Destination.V4, parsed.Source.V4, Ipv4Header.Size + icmpLength, 0);
        var icmp = ip.Slice(Ipv4Header.Size, icmpLength);
        icmp[..IcmpHeader.Size].Clear();
        ref var header = ref IcmpHeader.At(icmp);
        header.Type = IcmpHeader.DestinationUnreachableV4;
        header.Code = code;
        offending.Slice(parsed.NetworkOffset, quoted).CopyTo(icmp[IcmpHeader.Size..]);
        header.Checksum = InternetChecksum.Compute(icmp);
        return Pad(frame, EthernetHeader.Size + Ipv4Header.Size + icmpLength);
    }

    /// <summary>A TCP reset answering a segment (IPv4 or IPv6), as a closed port answers it (<see cref="TcpSegmentFields.ResetFor"/>).</summary>
    public static int TcpReset(ReadOnlySpan<byte> offending, in ParsedPacket parsed, Span<byte> frame, MacAddress ourMac)
    {
        ref readonly var segment = ref TcpHeader.At(offending[parsed.TransportOffset..]);
        var reset = TcpSegmentFields.ResetFor(segment.Sequence, segment.Acknowledgement, segment.Flags, parsed.PacketEnd - parsed.PayloadOffset);
        EthernetHeader.Write(frame, EthernetHeader.Source(offending), ourMac, parsed.IpVersion == 6 ? EtherTypes.IPv6 : EtherTypes.IPv4);
        int length = TcpSegmentBuilder.Write(frame[EthernetHeader.Size..], parsed.Destination, parsed.DestinationPort, parsed.Source,
            parsed.SourcePort, reset, [], 0);
        return Pad(frame, EthernetHeader.Size + length);
    }

    private static int Pad(Span<byte> frame, int length)
    {
        if (length >= MinimumFrameLength)
        {
            return length;
        }
        frame[length..MinimumFrameLength].Clear();
        return MinimumFrameLength;
    }
}
