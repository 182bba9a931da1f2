using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane.Stages;

/// <summary>
/// UDP over IPv6 through the stages that carry it: demux to a dual-stack or IPv6 socket, the host's duties (neighbour
/// discovery believed only from the link, ICMPv6 port unreachable for a closed port), egress anti-spoofing by family,
/// and next hops resolved by neighbour solicitation.
/// </summary>
public sealed class Ipv6StagesTests : IDisposable
{
    private readonly StageRig _rig = new(ipv6: true);

    public void Dispose() => _rig.Dispose();

    [Fact]
    public void A_datagram_over_ipv6_finds_the_socket_on_the_ipv6_wildcard_and_an_ipv4_one_finds_it_too()
    {
        var app = _rig.Bind(5000, local: HostInterface.AnyV6);
        var demux = new DemuxStage(_rig.Counters, _rig.Lookup, _rig.Host);
        int v6 = _rig.ReceiveParsed(StageRig.Udp6(StageRig.PeerAddress6, 40000, StageRig.HostAddress6, 5000));
        int v4 = _rig.ReceiveParsed(StageRig.UdpFromPeer(5000));
        int badChecksum = _rig.ReceiveParsed(Corrupted(StageRig.Udp6(StageRig.PeerAddress6, 40000, StageRig.HostAddress6, 5000)));

        demux.Run(_rig.Batch);

        Assert.Equal(app.Socket.Pipe.Slot, _rig.Batch.SocketSlot(v6));
        Assert.Equal(app.Socket.Pipe.Slot, _rig.Batch.SocketSlot(v4));
        Assert.True(_rig.Batch.IsDone(badChecksum));
        Assert.Equal(1, _rig.Counters.Drops(DropReason.BadUdpChecksum));
    }

    [Fact]
    public void A_datagram_over_ipv6_to_a_closed_port_is_answered_with_icmpv6_port_unreachable_quoting_it()
    {
        var frame = StageRig.Udp6(StageRig.PeerAddress6, 40000, StageRig.HostAddress6, 9999);
        int index = _rig.ReceiveParsed(frame);

        new HostStage(_rig.Counters, _rig.Host, _rig.Neighbours, _rig.Replies).Run(_rig.Batch, _rig.Now);

        Assert.True(_rig.Batch.IsDone(index));
        Assert.Equal(1, _rig.Counters.Drops(DropReason.NoSocket));
        var (reply, packet) = Assert.Single(_rig.Outbox());
        Assert.Equal(PacketKind.IcmpV6, packet.Kind);
        Assert.Equal((Icmpv6Frames.DestinationUnreachable, Icmpv6Frames.PortUnreachableCode), (packet.IcmpType, packet.IcmpCode));
        Assert.Equal((StageRig.HostAddress6, StageRig.PeerAddress6), (packet.Source, packet.Destination));
        Assert.Equal(StageRig.PeerMac, EthernetHeader.Destination(reply));
        Assert.True(InternetChecksum.IsValidTransport(reply, packet));
        Assert.Equal(frame[EthernetHeader.Size..], reply[(packet.TransportOffset + IcmpHeader.Size)..packet.PacketEnd]);
    }

    [Fact]
    public void A_solicitation_for_our_address_is_answered_and_teaches_us_the_asker_but_not_one_that_crossed_a_router()
    {
        var host = new HostStage(_rig.Counters, _rig.Host, _rig.Neighbours, _rig.Replies);
        int forwarded = _rig.ReceiveParsed(Solicitation(hopLimit: 64));
        int onLink = _rig.ReceiveParsed(Solicitation(hopLimit: 255));

        host.Run(_rig.Batch, _rig.Now);

        Assert.Equal(DropReason.MalformedNeighbourDiscovery, _rig.Batch.DropReasonOf(forwarded));
        Assert.True(_rig.Batch.IsDone(onLink));
        Assert.True(_rig.Neighbours.TryGet(StageRig.PeerAddress6, out var learned));
        Assert.Equal(StageRig.PeerMac, learned);
        var (_, advertisement) = Assert.Single(_rig.Outbox());
        Assert.Equal(Icmpv6Frames.NeighbourAdvertisement, advertisement.IcmpType);
    }

    [Fact]
    public void An_unknown_ipv6_next_hop_is_solicited_at_its_group_and_the_packet_leaves_once_a_solicited_advertisement_answers()
    {
        var app = _rig.Bind(5000, local: HostInterface.AnyV6);
        var neighbour = new NeighbourStage(_rig.Counters, _rig.Sockets, _rig.Host, _rig.Neighbours, _rig.Replies);
        var sent = StageRig.Udp6(StageRig.HostAddress6, 5000, StageRig.PeerAddress6, 9);
        int index = _rig.ReceiveParsed(sent);
        _rig.Batch.SocketSlot(index) = app.Socket.Pipe.Slot;

        neighbour.Run(_rig.Batch, first: 0, _rig.Now);

        Assert.Equal(1, neighbour.Waiting);
        var (solicitation, asked) = Assert.Single(_rig.Outbox());
        Assert.Equal(Icmpv6Frames.NeighbourSolicitation, asked.IcmpType);
        Assert.Equal(Ipv6Multicast.SolicitedNode(StageRig.PeerAddress6), asked.Destination);
        Assert.Equal(new MacAddress(0x3333_FF00_0002UL), EthernetHeader.Destination(solicitation));
        Assert.Equal(StageRig.PeerAddress6, Icmpv6Frames.SolicitedTarget(solicitation, asked));

        _rig.Batch.Clear();
        _rig.ReceiveParsed(Advertisement());
        new HostStage(_rig.Counters, _rig.Host, _rig.Neighbours, _rig.Replies).Run(_rig.Batch, _rig.Now);
        _rig.Batch.Clear();
        neighbour.Release(_rig.Batch, _rig.Now);

        Assert.Equal(1, _rig.Batch.Count);
        var frame = _rig.Batch.Frame(0);
        Assert.Equal(StageRig.PeerMac, EthernetHeader.Destination(frame));
        Assert.Equal(EtherTypes.IPv6, EthernetHeader.At(frame).EtherType);
    }

    [Fact]
    public void Each_socket_sends_only_the_families_it_may_from_the_hosts_address_of_that_family()
    {
        var validate = new ValidateStage(_rig.Counters, _rig.Sockets, _rig.Host);
        var dualStack = _rig.Bind(5000, local: HostInterface.AnyV6);
        var v6Only = _rig.Bind(5001, local: HostInterface.AnyV6, v6Only: true);
        var v4 = _rig.Bind(5002, local: NetAddress.FromV4(0));
        int Sent(AppSide app, byte[] frame)
        {
            frame.AsSpan(0, EthernetHeader.Size).Clear();
            int index = _rig.Receive(frame);
            _rig.Batch.SocketSlot(index) = app.Socket.Pipe.Slot;
            return index;
        }
        int[] allowed =
        [
            Sent(dualStack, StageRig.Udp6(StageRig.HostAddress6, 5000, StageRig.PeerAddress6, 9)),
            Sent(dualStack, StageRig.Udp(StageRig.HostAddress, 5000, StageRig.PeerAddress, 9)),
            Sent(v6Only, StageRig.Udp6(StageRig.HostAddress6, 5001, StageRig.PeerAddress6, 9)),
            Sent(v4, StageRig.Udp(StageRig.HostAddress, 5002, StageRig.PeerAddress, 9)),
        ];
        int[] refused =
        [
            Sent(v6Only, StageRig.Udp(StageRig.HostAddress, 5001, StageRig.PeerAddress, 9)),
            Sent(v4, StageRig.Udp6(StageRig.HostAddress6, 5002, StageRig.PeerAddress6, 9)),
            Sent(dualStack, StageRig.Udp6(NetAddress.Parse("fd66::99"), 5000, StageRig.PeerAddress6, 9)),
        ];

        validate.Run(_rig.Batch, first: 0);

        Assert.All(allowed, i => Assert.False(_rig.Batch.IsDone(i)));
        Assert.All(refused, i => Assert.True(_rig.Batch.IsDone(i)));
        Assert.Equal(refused.Length, _rig.Counters.Drops(DropReason.TxSpoofedSource));
    }

    [Theory]
    [InlineData("02:00:00:00:00:01", "fe80::ff:fe00:1")]
    [InlineData("52:54:00:12:34:56", "fe80::5054:ff:fe12:3456")] // as Linux shows a QEMU NIC's
    public void The_link_local_address_is_made_from_the_mac_as_linux_makes_it(string mac, string linkLocal) =>
        Assert.Equal(NetAddress.Parse(linkLocal), HostInterface.LinkLocalFor(MacAddress.Parse(mac)));

    [Fact]
    public void A_solicitation_for_a_second_address_is_answered_from_that_address()
    {
        var second = NetAddress.Parse("fd66:2::1");
        using var rig = new StageRig(ipv6: true, moreAddresses6: [(second, 64)]);
        var frame = new byte[128];
        int length = Icmpv6Frames.Solicitation(frame, StageRig.PeerMac, NetAddress.Parse("fd66:2::2"), second);
        EthernetHeader.Write(frame, new MacAddress(0x3333_FF00_0001UL), StageRig.PeerMac, EtherTypes.IPv6);
        rig.ReceiveParsed(frame.AsSpan(0, length));

        new HostStage(rig.Counters, rig.Host, rig.Neighbours, rig.Replies).Run(rig.Batch, rig.Now);

        var (advertisement, packet) = Assert.Single(rig.Outbox());
        Assert.Equal(Icmpv6Frames.NeighbourAdvertisement, packet.IcmpType);
        Assert.Equal(second, packet.Source);
        Assert.Equal(second, Icmpv6Frames.AdvertisedTarget(advertisement, packet));
        Assert.True(rig.Host.ListensTo(new MacAddress(0x3333_FF00_0001UL)));
    }

    [Fact]
    public void A_router_advertisement_from_a_link_local_router_sets_the_default_route_only_when_accepted_and_a_zero_lifetime_withdraws_it()
    {
        var router = NetAddress.Parse("fe80::1");
        var offLink = NetAddress.Parse("2001:db8:99::1");
        Assert.Null(RunAdvertisement(_rig, router, 1800).GatewayFor(offLink)); // accept_ra off: read and let be

        using var accepting = new StageRig(ipv6: true, acceptRouterAdvertisements: true);
        var host = RunAdvertisement(accepting, router, 1800);
        Assert.Equal(router, host.GatewayFor(offLink));
        Assert.True(accepting.Neighbours.TryGet(router, out var mac) && mac == StageRig.PeerMac);
        RunAdvertisement(accepting, NetAddress.Parse("fd66::9"), 1800); // not link-local: not a router's
        Assert.Equal(1, accepting.Counters.Drops(DropReason.MalformedNeighbourDiscovery));
        Assert.Equal(router, host.GatewayFor(offLink));
        RunAdvertisement(accepting, router, 0);
        Assert.Null(host.GatewayFor(offLink));
    }

    /// <summary>Runs the host stage over one router advertisement (with the peer's MAC as its source link-layer option); returns the rig's host.</summary>
    private static HostInterface RunAdvertisement(StageRig rig, NetAddress router, ushort lifetime)
    {
        const int icmpLength = 16 + 8;
        var allNodes = new NetAddress(0xFF02_0000_0000_0000UL, 1);
        var frame = new byte[EthernetHeader.Size + Ipv6Header.Size + icmpLength];
        EthernetHeader.Write(frame, new MacAddress(0x3333_0000_0001UL), StageRig.PeerMac, EtherTypes.IPv6);
        var ip = frame.AsSpan(EthernetHeader.Size);
        Ipv6Header.Write(ip, IpProtocols.IcmpV6, router, allNodes, icmpLength, hopLimit: 255);
        var icmp = ip.Slice(Ipv6Header.Size, icmpLength);
        icmp[0] = Icmpv6Frames.RouterAdvertisement;
        icmp[6] = (byte)(lifetime >> 8);
        icmp[7] = (byte)lifetime;
        icmp[16] = 1; // source link-layer address
        icmp[17] = 1;
        StageRig.PeerMac.Write(icmp[18..]);
        ushort checksum = InternetChecksum.Transport(InternetChecksum.PseudoHeaderV6(router, allNodes, IpProtocols.IcmpV6, icmpLength), icmp, IpProtocols.IcmpV6);
        icmp[2] = (byte)(checksum >> 8);
        icmp[3] = (byte)checksum;
        rig.Batch.Clear();
        rig.ReceiveParsed(frame);
        new HostStage(rig.Counters, rig.Host, rig.Neighbours, rig.Replies).Run(rig.Batch, rig.Now);
        return rig.Host;
    }

    /// <summary>A neighbour solicitation from the peer for our address, with its MAC as the source link-layer option.</summary>
    private static byte[] Solicitation(byte hopLimit)
    {
        var frame = new byte[128];
        int length = Icmpv6Frames.Solicitation(frame, StageRig.PeerMac, StageRig.PeerAddress6, StageRig.HostAddress6);
        frame = frame[..length];
        EthernetHeader.Write(frame, new MacAddress(0x3333_FF00_0001UL), StageRig.PeerMac, EtherTypes.IPv6);
        frame[EthernetHeader.Size + 7] = hopLimit; // outside the checksum: only the hop limit says it was forwarded
        return frame;
    }

    /// <summary>The peer's solicited advertisement of its own address (built as the host builds its own, then addressed to us).</summary>
    private static byte[] Advertisement()
    {
        var solicitation = new byte[128];
        int length = Icmpv6Frames.Solicitation(solicitation, StageRig.HostMac, StageRig.HostAddress6, StageRig.PeerAddress6);
        PacketParser.Parse(solicitation.AsSpan(0, length), out var asked);
        var frame = new byte[128];
        int answer = Icmpv6Frames.Advertisement(solicitation.AsSpan(0, length), asked, frame, StageRig.PeerMac, StageRig.PeerAddress6);
        return frame[..answer];
    }

    private static byte[] Corrupted(byte[] frame)
    {
        frame[^1] ^= 0xFF;
        return frame;
    }
}
