namespace Norman.Core.Packets;

/// <summary>
/// The IPv6 host's own messages — neighbour solicitations and the advertisements answering them (RFC 4861), echo
/// replies, destination unreachable (RFC 4443) — and what it reads of its neighbours' (targets, link-layer options).
/// <code>
///  NS/NA: type(135/136) code checksum | flags(R S O) reserved (4) | target address (16) | options: type len(×8) …
/// </code>
/// </summary>
public static class Icmpv6Frames
{
    public const byte DestinationUnreachable = 1;
    public const byte PortUnreachableCode = 4;
    public const byte RouterSolicitation = 133;
    public const byte RouterAdvertisement = 134;
    public const byte NeighbourSolicitation = 135;
    public const byte NeighbourAdvertisement = 136;
    private const byte SourceLinkLayerOption = 1, TargetLinkLayerOption = 2;
    private const byte SolicitedFlag = 0x40, OverrideFlag = 0x20;
    private const int NdMessageLength = 24;
    /// <summary>A router advertisement's fixed part: type, code, checksum, hop limit, flags, router lifetime, two timers.</summary>
    private const int RaMessageLength = 16;
    /// <summary>Options a neighbour-discovery message may carry before the reader gives up on it (a hostile chain is bounded).</summary>
    private const int MaxOptions = 8;
    /// <summary>An ICMPv6 error fits the IPv6 minimum MTU, 1280 bytes, quoting as much of the offending packet as that allows.</summary>
    private const int MinimumMtu = 1280;

    /// <summary>The target of a neighbour advertisement, or null when the message is too short to be one.</summary>
    public static NetAddress? AdvertisedTarget(ReadOnlySpan<byte> frame, in ParsedPacket packet) =>
        packet.PacketEnd - packet.TransportOffset >= NdMessageLength && packet.IcmpType == NeighbourAdvertisement && packet.IcmpCode == 0
            ? NetAddress.ReadV6(frame[(packet.TransportOffset + 8)..])
            : null;

    /// <summary>Whether an advertisement answers a solicitation (its S flag): as an ARP reply does, against a request.</summary>
    public static bool IsSolicitedAdvertisement(ReadOnlySpan<byte> frame, in ParsedPacket packet) =>
        (frame[packet.TransportOffset + 4] & SolicitedFlag) != 0;

    /// <summary>
    /// A router advertisement's router lifetime in seconds (0: not a default router), or null when the message is too
    /// short to be one.
    /// </summary>
    public static int? RouterLifetime(ReadOnlySpan<byte> frame, in ParsedPacket packet) =>
        packet.PacketEnd - packet.TransportOffset >= RaMessageLength && packet.IcmpType == RouterAdvertisement && packet.IcmpCode == 0
            ? System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(frame[(packet.TransportOffset + 6)..])
            : null;

    /// <summary>
    /// The MAC a neighbour-discovery message gives for its sender (a solicitation's or a router advertisement's source
    /// link-layer option) or its target (an advertisement's target link-layer option); null when it carries none, or
    /// its options are malformed.
    /// </summary>
    public static MacAddress? LinkLayerAddress(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        byte wanted = packet.IcmpType == NeighbourAdvertisement ? TargetLinkLayerOption : SourceLinkLayerOption;
        int cursor = packet.TransportOffset + (packet.IcmpType == RouterAdvertisement ? RaMessageLength : NdMessageLength);
        for (int option = 0; option < MaxOptions && packet.PacketEnd - cursor >= 8; option++)
        {
            int length = frame[cursor + 1] * 8;
            if (length == 0 || packet.PacketEnd - cursor < length)
            {
                return null; // RFC 4861 7.1.1: a zero-length option makes the whole message invalid
            }
            if (frame[cursor] == wanted && length == 8)
            {
                return MacAddress.Read(frame[(cursor + 2)..]);
            }
            cursor += length;
        }
        return null;
    }

    /// <summary>
    /// Asks for <paramref name="target"/>'s MAC: a solicitation to its solicited-node group (and that group's Ethernet
    /// address), with our MAC as its source link-layer option, so the answer can come straight back.
    /// </summary>
    public static int Solicitation(Span<byte> frame, MacAddress ourMac, NetAddress ourAddress, NetAddress target)
    {
        var group = Ipv6Multicast.SolicitedNode(target);
        var icmp = NdMessage(frame, Ipv6Multicast.MacOf(group), ourMac, ourAddress, group, NeighbourSolicitation, NdMessageLength + 8);
        target.WriteV6(icmp[8..]);
        WriteLinkLayerOption(icmp[NdMessageLength..], SourceLinkLayerOption, ourMac);
        return Finish(icmp, ourAddress, group);
    }

    /// <summary>
    /// Asks the link's routers to advertise themselves now (as a host does when its interface comes up), rather than at
    /// their next periodic advertisement: to all routers, ff02::2, from our link-local address with our MAC.
    /// </summary>
    public static int RouterSolicitationFrom(Span<byte> frame, MacAddress ourMac, NetAddress ourLinkLocal)
    {
        var allRouters = Ipv6Multicast.AllRouters;
        var icmp = NdMessage(frame, Ipv6Multicast.MacOf(allRouters), ourMac, ourLinkLocal, allRouters, RouterSolicitation, 8 + 8);
        WriteLinkLayerOption(icmp[8..], SourceLinkLayerOption, ourMac);
        return Finish(icmp, ourLinkLocal, allRouters);
    }

    /// <summary>
    /// ICMPv6 destination unreachable (<paramref name="code"/>: 4 port, 1 administratively prohibited, 3 address) answering
    /// a packet to us, from the address it was sent to, back to the MAC it came from.
    /// </summary>
    public static int Unreachable(ReadOnlySpan<byte> offending, in ParsedPacket packet, Span<byte> frame, MacAddress ourMac, byte code)
    {
        int quoted = Math.Min(packet.PacketEnd - packet.NetworkOffset, MinimumMtu - Ipv6Header.Size - IcmpHeader.Size);
        int icmpLength = IcmpHeader.Size + quoted;
        EthernetHeader.Write(frame, EthernetHeader.Source(offending), ourMac, EtherTypes.IPv6);
        var ip = frame[EthernetHeader.Size..];
        Ipv6Header.Write(ip, IpProtocols.IcmpV6, packet.Destination, packet.Source, icmpLength);
        var icmp = ip.Slice(Ipv6Header.Size, icmpLength);
        icmp[..IcmpHeader.Size].Clear();
        icmp[0] = DestinationUnreachable;
        icmp[1] = code;
        offending.Slice(packet.NetworkOffset, quoted).CopyTo(icmp[IcmpHeader.Size..]);
        WriteChecksum(icmp, packet.Destination, packet.Source);
        return EthernetHeader.Size + Ipv6Header.Size + icmpLength;
    }

    /// <summary>The target of a neighbour solicitation, or null when the message is too short to be one.</summary>
    public static NetAddress? SolicitedTarget(ReadOnlySpan<byte> frame, in ParsedPacket packet) =>
        packet.PacketEnd - packet.TransportOffset >= NdMessageLength && packet.IcmpType == NeighbourSolicitation && packet.IcmpCode == 0
            ? NetAddress.ReadV6(frame[(packet.TransportOffset + 8)..])
            : null;

    /// <summary>Answers a solicitation for <paramref name="ourAddress"/> with a solicited, overriding advertisement.</summary>
    public static int Advertisement(ReadOnlySpan<byte> solicitation, in ParsedPacket packet, Span<byte> frame, MacAddress ourMac, NetAddress ourAddress)
    {
        // A solicitation from the unspecified address (duplicate address detection) is answered to all nodes.
        var destination = packet.Source.High == 0 && packet.Source.Low == 0 ? Ipv6Multicast.AllNodes : packet.Source;
        var icmp = NdMessage(frame, EthernetHeader.Source(solicitation), ourMac, ourAddress, destination, NeighbourAdvertisement, NdMessageLength + 8);
        icmp[4] = (byte)(SolicitedFlag | OverrideFlag);
        ourAddress.WriteV6(icmp[8..]);
        WriteLinkLayerOption(icmp[NdMessageLength..], TargetLinkLayerOption, ourMac);
        return Finish(icmp, ourAddress, destination);
    }

    /// <summary>
    /// The start of a neighbour discovery message: Ethernet to <paramref name="toMac"/>, IPv6 with hop limit 255 (RFC 4861
    /// requires it, so a router cannot have forwarded it), and an ICMPv6 body of <paramref name="icmpLength"/> zeroed bytes
    /// with its type. The caller fills the body, then <see cref="Finish"/>.
    /// </summary>
    private static Span<byte> NdMessage(Span<byte> frame, MacAddress toMac, MacAddress ourMac, NetAddress source, NetAddress destination, byte type, int icmpLength)
    {
        EthernetHeader.Write(frame, toMac, ourMac, EtherTypes.IPv6);
        var ip = frame[EthernetHeader.Size..];
        Ipv6Header.Write(ip, IpProtocols.IcmpV6, source, destination, icmpLength, hopLimit: 255);
        var icmp = ip.Slice(Ipv6Header.Size, icmpLength);
        icmp.Clear();
        icmp[0] = type;
        return icmp;
    }

    /// <summary>A source or target link-layer address option: kind, length in units of 8 bytes, the MAC.</summary>
    private static void WriteLinkLayerOption(Span<byte> option, byte kind, MacAddress mac)
    {
        option[0] = kind;
        option[1] = 1;
        mac.Write(option[2..]);
    }

    /// <summary>Checksums an ND message and returns the frame's length.</summary>
    private static int Finish(Span<byte> icmp, NetAddress source, NetAddress destination)
    {
        WriteChecksum(icmp, source, destination);
        return EthernetHeader.Size + Ipv6Header.Size + icmp.Length;
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
