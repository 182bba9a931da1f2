using System.Diagnostics;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;
using Norman.Daemon.Qos;

namespace Norman.Daemon.Tests.Dataplane.Stages;

public sealed class PoliceStageTests : IDisposable
{
    private readonly EngineHarness _compiler = new();
    private readonly StageRig _rig;
    private readonly QosStore _store;
    private readonly PoliceStage _stage;

    public PoliceStageTests()
    {
        _rig = new StageRig(names: _compiler.Names);
        _store = new QosStore(_compiler.Engine, _compiler.Names);
        _stage = new PoliceStage(_rig.Counters, _rig.Sockets, _rig.Host);
    }

    public void Dispose()
    {
        _rig.Dispose();
        _compiler.Dispose();
    }

    private QosSnapshot Qos()
    {
        _compiler.Breathe();
        return _compiler.Engine.Qos;
    }

    private int[] ReceiveFor(AppSide app, int count)
    {
        var indexes = new int[count];
        for (int n = 0; n < count; n++)
        {
            indexes[n] = _rig.ReceiveParsed(StageRig.UdpFromPeer(app.Socket.Pipe.LocalPort, payloadLength: 1400));
            _rig.Batch.SocketSlot(indexes[n]) = app.Socket.Pipe.Slot;
        }
        return indexes;
    }

    [Fact]
    public void Above_its_rate_a_policed_class_loses_packets_counted_for_class_and_socket_and_other_classes_lose_none()
    {
        var flooded = _rig.Bind(5000, app: "flooded");
        var quiet = _rig.Bind(5001, app: "quiet");
        _store.AddOrChange("flooded", ["police", "1M", "match", "app", "flooded"], change: false);
        var qos = Qos();
        var floodedIndexes = ReceiveFor(flooded, 10);
        var quietIndexes = ReceiveFor(quiet, 10);

        _stage.Run(_rig.Batch, qos, _rig.Now);

        // At one instant a class admits only its burst (at 1 Mbit/s, a couple of 1,400-byte frames).
        int admitted = floodedIndexes.Count(i => !_rig.Batch.IsDone(i));
        Assert.InRange(admitted, 1, 3);
        Assert.All(floodedIndexes.Where(i => _rig.Batch.IsDone(i)), i => Assert.Equal(DropReason.Policed, _rig.Batch.DropReasonOf(i)));
        Assert.Equal(10 - admitted, flooded.Socket.Pipe.Counters.Drops(DropReason.Policed));
        Assert.Equal(10 - admitted, _rig.Counters.Drops(DropReason.Policed));
        Assert.Equal(10 - admitted, _store.Show().Single(v => v.Class.Name == "flooded").Counters.PolicedDrops);
        Assert.All(quietIndexes, i => Assert.False(_rig.Batch.IsDone(i)));

        // A second later the bucket has refilled.
        _rig.Batch.Clear();
        var later = ReceiveFor(flooded, 1);
        _stage.Run(_rig.Batch, qos, _rig.Now + Stopwatch.Frequency);
        Assert.False(_rig.Batch.IsDone(later[0]));
    }
}
