using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane.Stages;

public sealed class DeliverStageTests : IDisposable
{
    private readonly StageRig _rig = new();
    private readonly DeliverStage _stage;

    public DeliverStageTests() => _stage = new DeliverStage(_rig.Counters, _rig.Sockets);

    public void Dispose() => _rig.Dispose();

    private int ReceiveFor(AppSide app, int payloadLength = 16)
    {
        int index = _rig.ReceiveParsed(StageRig.UdpFromPeer(app.Socket.Pipe.LocalPort, payloadLength));
        _rig.Batch.SocketSlot(index) = app.Socket.Pipe.Slot;
        return index;
    }

    [Fact]
    public void Packets_land_in_their_pipes_from_the_IP_header_on_and_a_sleeping_application_is_woken_once_a_batch()
    {
        var app = _rig.Bind(5000);
        Assert.True(app.Rx.PrepareToSleep());
        ReceiveFor(app, payloadLength: 10);
        ReceiveFor(app, payloadLength: 20);
        int done = ReceiveFor(app);
        _rig.Batch.MarkDone(done);

        _stage.Run(_rig.Batch, batchNumber: 1, _rig.Now);

        var received = app.ReceiveAll();
        Assert.Equal([10, 20], received.Select(r => r.Payload.Length));
        Assert.Equal(40000, received[0].SourcePort); // read at the IP header's offset: no Ethernet header in the pipe
        Assert.Equal(2, app.Socket.Pipe.Counters.RxPackets);
        Assert.Equal(30, app.Socket.Pipe.Counters.RxBytes);
        Assert.Equal(2, _rig.Counters.DeliveredPackets);
        Assert.Equal(1, _rig.Counters.Wakeups);
    }

    [Fact]
    public void A_full_pipe_drops_for_its_socket_alone()
    {
        var full = _rig.Bind(5000, slotCount: 2);
        var other = _rig.Bind(5001);
        var indexes = new[] { ReceiveFor(full), ReceiveFor(full), ReceiveFor(full), ReceiveFor(other) };

        _stage.Run(_rig.Batch, batchNumber: 1, _rig.Now);

        Assert.Equal(DropReason.RxPipeFull, _rig.Batch.DropReasonOf(indexes[2]));
        Assert.Equal(1, full.Socket.Pipe.Counters.Drops(DropReason.RxPipeFull));
        Assert.Equal(2, full.ReceiveAll().Count);
        Assert.Single(other.ReceiveAll());
        Assert.Equal(0, other.Socket.Pipe.Counters.Drops(DropReason.RxPipeFull));
    }
}
