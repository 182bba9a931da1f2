using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane.Stages;

public sealed class HostStageTests : IDisposable
{
    private readonly StageRig _rig = new();
    private readonly HostStage _stage;

    public HostStageTests() => _stage = new HostStage(_rig.Counters, _rig.Host, _rig.Neighbours, _rig.Replies);

    public void Dispose() => _rig.Dispose();

    [Fact]
    public void Arp_for_our_address_is_answered_and_the_asker_learnt_and_arp_for_another_is_let_be()
    {
        int ours = _rig.ReceiveParsed(StageRig.ArpRequestFromPeer(StageRig.HostAddress));
        int theirs = _rig.ReceiveParsed(StageRig.ArpRequestFromPeer(NetAddress.Parse("198.18.0.50")));

        _stage.Run(_rig.Batch, _rig.Now);

        Assert.True(_rig.Batch.IsDone(ours));
        Assert.Equal(DropReason.None, _rig.Batch.DropReasonOf(ours));
        Assert.Equal(DropReason.None, _rig.Batch.DropReasonOf(theirs));
        var reply = Assert.Single(_rig.Outbox());
        Assert.Equal(PacketKind.Arp, reply.Packet.Kind);
        Assert.Equal(StageRig.PeerMac, EthernetHeader.Destination(reply.Frame));
        Assert.True(_rig.Neighbours.TryGet(StageRig.PeerAddress, out var learnt));
        Assert.Equal(StageRig.PeerMac, learnt);
    }

    [Fact]
    public void A_closed_udp_port_gets_port_unreachable_a_closed_tcp_port_a_reset_and_a_ping_its_echo()
    {
        int udp = _rig.ReceiveParsed(StageRig.UdpFromPeer(9));
        int tcp = _rig.ReceiveParsed(StageRig.TcpFromPeer(80, TcpHeader.Syn));
        int ping = _rig.ReceiveParsed(StageRig.PingFromPeer());

        _stage.Run(_rig.Batch, _rig.Now);

        Assert.Equal(DropReason.NoSocket, _rig.Batch.DropReasonOf(udp));
        Assert.Equal(DropReason.NoSocket, _rig.Batch.DropReasonOf(tcp));
        Assert.True(_rig.Batch.IsDone(ping));
        Assert.Equal(2, _rig.Counters.Drops(DropReason.NoSocket));
        var sent = _rig.Outbox();
        Assert.Equal(3, sent.Count);
        Assert.Equal((PacketKind.Icmp, IcmpHeader.DestinationUnreachableV4, IcmpHeader.PortUnreachableCode),
            (sent[0].Packet.Kind, sent[0].Packet.IcmpType, sent[0].Packet.IcmpCode));
        Assert.Equal(PacketKind.Tcp, sent[1].Packet.Kind);
        Assert.Equal(TcpHeader.Rst | TcpHeader.Ack, sent[1].Packet.TcpFlags);
        Assert.Equal(80, sent[1].Packet.SourcePort);
        Assert.Equal((PacketKind.Icmp, IcmpHeader.EchoReplyV4), (sent[2].Packet.Kind, sent[2].Packet.IcmpType));
        Assert.All(sent, s => Assert.Equal(StageRig.PeerAddress, s.Packet.Destination));
    }

    [Fact]
    public void A_packet_with_a_socket_goes_on_and_what_is_not_for_this_host_or_not_carried_is_a_counted_drop()
    {
        int owned = _rig.ReceiveParsed(StageRig.UdpFromPeer(53));
        _rig.Batch.SocketSlot(owned) = 0;
        int elsewhere = _rig.ReceiveParsed(StageRig.Udp(StageRig.PeerAddress, 1, NetAddress.Parse("198.18.0.9"), 53));
        var fragment = StageRig.UdpFromPeer(53);
        ref var ip = ref Ipv4Header.At(fragment.AsSpan(EthernetHeader.Size));
        ip.FlagsAndFragment = Ipv4Header.MoreFragmentsFlag;
        ip.Checksum = 0;
        ip.Checksum = InternetChecksum.Compute(fragment.AsSpan(EthernetHeader.Size, Ipv4Header.Size));
        int fragmented = _rig.ReceiveParsed(fragment);

        _stage.Run(_rig.Batch, _rig.Now);

        Assert.False(_rig.Batch.IsDone(owned));
        Assert.Equal(DropReason.NotForThisHost, _rig.Batch.DropReasonOf(elsewhere));
        Assert.Equal(DropReason.IpFragment, _rig.Batch.DropReasonOf(fragmented));
        Assert.Empty(_rig.Outbox());
    }
}
