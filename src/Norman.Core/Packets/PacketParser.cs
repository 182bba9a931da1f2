using System.Buffers.Binary;

namespace Norman.Core.Packets;

/// <summary>
/// Parses an Ethernet frame down to its transport header without allocating: Ethernet, up to two VLAN tags,
/// ARP, IPv4 (options; fragments flagged), IPv6 (extension headers walked), ICMP, ICMPv6, UDP and TCP.
/// Every length is checked against the frame before it is used; a frame that fails gets a <see cref="ParseError"/>.
/// </summary>
public static class PacketParser
{
    public const int MaxVlanTags = 2;
    public const int MaxIpv6ExtensionHeaders = 8;

    public static ParseError Parse(ReadOnlySpan<byte> frame, out ParsedPacket packet)
    {
        packet = default;
        if (frame.Length < EthernetHeader.Size)
        {
            return ParseError.TruncatedEthernet;
        }
        int offset = EthernetHeader.Size;
        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        while (etherType is EtherTypes.Vlan or EtherTypes.QinQ)
        {
            if (packet.VlanCount == MaxVlanTags)
            {
                return ParseError.TooManyVlanTags;
            }
            if (frame.Length < offset + VlanTag.Size)
            {
                return ParseError.TruncatedVlan;
            }
            if (packet.VlanCount == 0)
            {
                packet.VlanId = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]) & 0x0FFF);
            }
            packet.VlanCount++;
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + 2)..]);
            offset += VlanTag.Size;
        }
        packet.EtherType = etherType;
        packet.NetworkOffset = (ushort)offset;
        return etherType switch
        {
            EtherTypes.IPv4 => ParseIpv4(frame, offset, ref packet),
            EtherTypes.IPv6 => ParseIpv6(frame, offset, ref packet),
            EtherTypes.Arp => ParseArp(frame, offset, ref packet),
            _ => ParseError.UnknownEtherType,
        };
    }

    /// <summary>Parses an IP packet without its Ethernet header (as a pipe holds it): offsets count from its first byte.</summary>
    public static ParseError ParseIpPacket(ReadOnlySpan<byte> ip, out ParsedPacket packet)
    {
        packet = default;
        if (ip.IsEmpty)
        {
            return ParseError.TruncatedIp;
        }
        return (ip[0] >> 4) switch
        {
            4 => ParseIpv4(ip, 0, ref packet),
            6 => ParseIpv6(ip, 0, ref packet),
            _ => ParseError.BadIpVersion,
        };
    }

    private static ParseError ParseArp(ReadOnlySpan<byte> frame, int offset, ref ParsedPacket packet)
    {
        if (frame.Length < offset + ArpPacket.Size)
        {
            return ParseError.TruncatedArp;
        }
        var arp = frame.Slice(offset, ArpPacket.Size);
        if (!System.Runtime.InteropServices.MemoryMarshal.AsRef<ArpPacket>(arp).IsEthernetIPv4)
        {
            return ParseError.MalformedArp;
        }
        packet.Kind = PacketKind.Arp;
        packet.Source = ArpPacket.SenderIp(arp);
        packet.Destination = ArpPacket.TargetIp(arp);
        packet.PacketEnd = (ushort)(offset + ArpPacket.Size);
        return ParseError.None;
    }

    private static ParseError ParseIpv4(ReadOnlySpan<byte> frame, int offset, ref ParsedPacket packet)
    {
        if (frame.Length < offset + Ipv4Header.Size)
        {
            return ParseError.TruncatedIp;
        }
        var ip = frame[offset..];
        ref readonly var header = ref Ipv4Header.At(ip);
        if (header.Version != 4)
        {
            return ParseError.BadIpVersion;
        }
        int headerLength = header.HeaderLength;
        if (headerLength < Ipv4Header.Size || headerLength > ip.Length)
        {
            return ParseError.BadIpHeaderLength;
        }
        int totalLength = header.TotalLength;
        if (totalLength < headerLength || totalLength > ip.Length)
        {
            return ParseError.BadIpTotalLength;
        }
        if (!InternetChecksum.IsValid(ip[..headerLength]))
        {
            return ParseError.BadIpChecksum;
        }
        packet.IpVersion = 4;
        packet.IpTotalLength = (ushort)totalLength;
        packet.Dscp = (byte)(header.TypeOfService >> 2);
        packet.Protocol = header.Protocol;
        packet.Source = NetAddress.FromV4(header.Source);
        packet.Destination = NetAddress.FromV4(header.Destination);
        packet.IsFragment = header.IsFragment;
        packet.IsLaterFragment = header.FragmentOffset != 0;
        packet.PacketEnd = (ushort)(offset + totalLength);
        return ParseTransport(frame, offset + headerLength, ref packet);
    }

    private static ParseError ParseIpv6(ReadOnlySpan<byte> frame, int offset, ref ParsedPacket packet)
    {
        if (frame.Length < offset + Ipv6Header.Size)
        {
            return ParseError.TruncatedIp;
        }
        var ip = frame[offset..];
        ref readonly var header = ref Ipv6Header.At(ip);
        if (header.Version != 6)
        {
            return ParseError.BadIpVersion;
        }
        int end = offset + Ipv6Header.Size + header.PayloadLength;
        if (end > frame.Length)
        {
            return ParseError.BadIpTotalLength;
        }
        packet.IpVersion = 6;
        packet.IpTotalLength = (ushort)Math.Min(ushort.MaxValue, Ipv6Header.Size + header.PayloadLength);
        packet.Dscp = (byte)(header.TrafficClass >> 2);
        packet.Source = Ipv6Header.Source(ip);
        packet.Destination = Ipv6Header.Destination(ip);
        packet.PacketEnd = (ushort)end;

        byte next = header.NextHeader;
        int cursor = offset + Ipv6Header.Size;
        for (int walked = 0; IsExtensionHeader(next); walked++)
        {
            if (walked == MaxIpv6ExtensionHeaders)
            {
                return ParseError.TooManyIpv6ExtensionHeaders;
            }
            if (end - cursor < 8)
            {
                return ParseError.TruncatedIpv6ExtensionHeader;
            }
            int length = next switch
            {
                IpProtocols.Fragment => 8,
                IpProtocols.Ah => (frame[cursor + 1] + 2) * 4,
                _ => (frame[cursor + 1] + 1) * 8,
            };
            if (end - cursor < length)
            {
                return ParseError.TruncatedIpv6ExtensionHeader;
            }
            if (next == IpProtocols.Fragment)
            {
                ushort offsetAndFlags = BinaryPrimitives.ReadUInt16BigEndian(frame[(cursor + 2)..]);
                packet.IsFragment = true;
                packet.IsLaterFragment = (offsetAndFlags & 0xFFF8) != 0;
            }
            next = frame[cursor];
            cursor += length;
        }
        packet.Protocol = next;
        return ParseTransport(frame, cursor, ref packet);
    }

    private static bool IsExtensionHeader(byte next) =>
        next is IpProtocols.HopByHop or IpProtocols.Routing or IpProtocols.Fragment
            or IpProtocols.DestinationOptions or IpProtocols.Ah or IpProtocols.Mobility;

    private static ParseError ParseTransport(ReadOnlySpan<byte> frame, int offset, ref ParsedPacket packet)
    {
        packet.TransportOffset = (ushort)offset;
        packet.PayloadOffset = (ushort)offset;
        if (packet.IsLaterFragment)
        {
            packet.Kind = PacketKind.OtherIp;
            return ParseError.None;
        }
        var segment = frame[offset..packet.PacketEnd];
        switch (packet.Protocol)
        {
            case IpProtocols.Udp:
            {
                if (segment.Length < UdpHeader.Size)
                {
                    return packet.IsFragment ? Other(ref packet) : ParseError.TruncatedTransport;
                }
                ref readonly var udp = ref UdpHeader.At(segment);
                if (!packet.IsFragment && (udp.Length < UdpHeader.Size || udp.Length > segment.Length))
                {
                    return ParseError.BadUdpLength;
                }
                packet.Kind = PacketKind.Udp;
                packet.SourcePort = udp.SourcePort;
                packet.DestinationPort = udp.DestinationPort;
                packet.PayloadOffset = (ushort)(offset + UdpHeader.Size);
                if (!packet.IsFragment)
                {
                    // A UDP datagram may be shorter than its IP packet; what follows is not payload.
                    packet.PacketEnd = (ushort)(offset + udp.Length);
                }
                return ParseError.None;
            }
            case IpProtocols.Tcp:
            {
                if (segment.Length < TcpHeader.Size)
                {
                    return packet.IsFragment ? Other(ref packet) : ParseError.TruncatedTransport;
                }
                ref readonly var tcp = ref TcpHeader.At(segment);
                if (tcp.HeaderLength < TcpHeader.Size || tcp.HeaderLength > segment.Length)
                {
                    return ParseError.BadTcpHeaderLength;
                }
                packet.Kind = PacketKind.Tcp;
                packet.SourcePort = tcp.SourcePort;
                packet.DestinationPort = tcp.DestinationPort;
                packet.TcpFlags = tcp.Flags;
                packet.PayloadOffset = (ushort)(offset + tcp.HeaderLength);
                return ParseError.None;
            }
            case IpProtocols.Icmp when packet.IpVersion == 4:
            case IpProtocols.IcmpV6 when packet.IpVersion == 6:
            {
                if (segment.Length < IcmpHeader.Size)
                {
                    return packet.IsFragment ? Other(ref packet) : ParseError.TruncatedTransport;
                }
                packet.Kind = packet.IpVersion == 4 ? PacketKind.Icmp : PacketKind.IcmpV6;
                packet.IcmpType = segment[0];
                packet.IcmpCode = segment[1];
                packet.PayloadOffset = (ushort)(offset + IcmpHeader.Size);
                return ParseError.None;
            }
            default:
                return Other(ref packet);
        }
    }

    private static ParseError Other(ref ParsedPacket packet)
    {
        packet.Kind = PacketKind.OtherIp;
        return ParseError.None;
    }
}
