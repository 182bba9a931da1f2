using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane.Stages;

public sealed class NeighbourStageTests : IDisposable
{
    private readonly StageRig _rig;
    private readonly NeighbourStage _stage;
    private readonly AppSide _app;

    public NeighbourStageTests() : this(gateway: null)
    {
    }

    private NeighbourStageTests(NetAddress? gateway)
    {
        _rig = new StageRig(gateway);
        _stage = new NeighbourStage(_rig.Counters, _rig.Sockets, _rig.Host, _rig.Neighbours, _rig.Replies);
        _app = _rig.Bind(5000);
    }

    public void Dispose() => _rig.Dispose();

    private int Sent(NetAddress destination, PacketBatch? batch = null)
    {
        var target = batch ?? _rig.Batch;
        var frame = StageRig.Udp(StageRig.HostAddress, 5000, destination, 9);
        frame.AsSpan(0, 12).Clear(); // no addresses yet: as validation leaves it, only the EtherType
        frame.CopyTo(target.NextBuffer());
        target.Append(frame.Length);
        int index = target.Count - 1;
        Assert.Equal(ParseError.None, PacketParser.Parse(frame, out target.Parsed(index)));
        target.SocketSlot(index) = _app.Socket.Pipe.Slot;
        return index;
    }

    [Fact]
    public void A_known_neighbour_gets_its_ethernet_header_at_once()
    {
        _rig.Neighbours.AddPermanent(StageRig.PeerAddress, StageRig.PeerMac);
        int index = Sent(StageRig.PeerAddress);

        _stage.Run(_rig.Batch, first: 0, _rig.Now);

        Assert.False(_rig.Batch.IsDone(index));
        Assert.Equal(StageRig.PeerMac, EthernetHeader.Destination(_rig.Batch.Frame(index)));
        Assert.Equal(StageRig.HostMac, EthernetHeader.Source(_rig.Batch.Frame(index)));
        Assert.Equal(1, _rig.Counters.SentPackets);
        Assert.Equal(1, _app.Socket.Pipe.Counters.TxPackets);
    }

    [Fact]
    public void An_unknown_neighbour_is_asked_for_and_the_packet_waits_then_leaves_with_the_answer()
    {
        int index = Sent(StageRig.PeerAddress);

        _stage.Run(_rig.Batch, first: 0, _rig.Now);

        Assert.True(_rig.Batch.IsDone(index));
        Assert.Equal(1, _stage.Waiting);
        var request = Assert.Single(_rig.Outbox());
        Assert.Equal(PacketKind.Arp, request.Packet.Kind);
        Assert.True(EthernetHeader.Destination(request.Frame).IsBroadcast);

        var next = new PacketBatch();
        _stage.Release(next, _rig.Now);
        Assert.Equal(0, next.Count); // still asking
        _rig.Neighbours.Learn(StageRig.PeerAddress, StageRig.PeerMac, _rig.Now, reply: true);
        _stage.Release(next, _rig.Now);

        Assert.Equal(1, next.Count);
        Assert.Equal(0, _stage.Waiting);
        Assert.Equal(StageRig.PeerMac, EthernetHeader.Destination(next.Frame(0)));
        Assert.Equal(_app.Socket.Pipe.Slot, next.SocketSlot(0));
    }

    [Fact]
    public void Off_the_subnet_without_a_gateway_is_a_counted_drop_with_no_question_asked()
    {
        int index = Sent(StageRig.OffLinkAddress);

        _stage.Run(_rig.Batch, first: 0, _rig.Now);

        Assert.True(_rig.Batch.IsDone(index));
        Assert.Equal(0, _stage.Waiting);
        Assert.Empty(_rig.Outbox());
        Assert.Equal(1, _app.Socket.Pipe.Counters.Drops(DropReason.NeighbourUnreachable));
    }

    [Fact]
    public void Off_the_subnet_the_gateway_is_the_next_hop()
    {
        var gateway = NetAddress.Parse("198.18.0.254");
        var gatewayMac = MacAddress.Parse("02:00:00:00:00:fe");
        using var routed = new NeighbourStageTests(gateway);
        routed._rig.Neighbours.AddPermanent(gateway, gatewayMac);
        int index = routed.Sent(StageRig.OffLinkAddress);

        routed._stage.Run(routed._rig.Batch, first: 0, routed._rig.Now);

        Assert.False(routed._rig.Batch.IsDone(index));
        Assert.Equal(gatewayMac, EthernetHeader.Destination(routed._rig.Batch.Frame(index)));
    }
}
