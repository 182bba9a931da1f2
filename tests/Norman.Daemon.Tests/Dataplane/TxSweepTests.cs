using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>
/// A thousand idle sockets must not slow a busy dataplane down: a busy breath looks at the pipes that had packets
/// and a sweep of the others, in turns. No pipe may wait longer than a full sweep, and an idle dataplane still
/// finds a new sender at its next breath.
/// </summary>
public sealed class TxSweepTests : IDisposable
{
    private const int Sockets = 1000;
    private static readonly int FullSweep = (Sockets + QosScheduler.SweepPerBreath - 1) / QosScheduler.SweepPerBreath;
    private readonly EngineHarness _wire = new(slotCount: 4);
    private readonly List<AppSide> _apps = new();

    public TxSweepTests()
    {
        for (int i = 0; i < Sockets; i++)
        {
            _apps.Add(_wire.Bind((ushort)(6000 + i)));
        }
        _wire.ResolvePeer();
    }

    public void Dispose() => _wire.Dispose();

    [Fact]
    public void Under_receive_load_a_thousand_pipes_with_a_packet_each_are_served_at_a_batch_a_breath()
    {
        _wire.Peer.StartFlood(40000, 6000, 18, long.MaxValue / 2); // every breath receives
        _wire.Engine.DoWork();
        foreach (var app in _apps)
        {
            app.Send("once"u8, EngineHarness.HostAddress, app.Socket.LocalPort, EngineHarness.PeerAddress, 9);
        }
        int breaths = 0;
        while (_wire.Peer.ReceivedUdpPackets < Sockets && breaths < 10 * FullSweep)
        {
            _wire.Engine.DoWork();
            breaths++;
        }
        Assert.Equal(Sockets, _wire.Peer.ReceivedUdpPackets);
        // A breath sends a batch; the sweep finds pipes faster than that (64 a breath), so none waits for its look.
        Assert.InRange(breaths, 1, (Sockets + PacketBatch.Capacity - 1) / PacketBatch.Capacity + 1);
    }

    [Fact]
    public void Under_receive_load_a_pipe_that_keeps_sending_is_looked_at_every_breath()
    {
        _wire.Peer.StartFlood(40000, 6000, 18, long.MaxValue / 2);
        var sender = _apps[Sockets - 1];
        sender.Send("first"u8, EngineHarness.HostAddress, sender.Socket.LocalPort, EngineHarness.PeerAddress, 9);
        int breaths = 0;
        while (_wire.Peer.ReceivedUdpPackets == 0 && breaths < 10 * FullSweep)
        {
            _wire.Engine.DoWork();
            breaths++;
        }
        Assert.InRange(breaths, 1, FullSweep + 1); // found by the sweep

        // From then on it is busy: each packet leaves in the breath after it was posted, while the sweep goes on.
        for (int breath = 0; breath < 3 * FullSweep; breath++)
        {
            long before = _wire.Peer.ReceivedUdpPackets;
            sender.Send("again"u8, EngineHarness.HostAddress, sender.Socket.LocalPort, EngineHarness.PeerAddress, 9);
            _wire.Engine.DoWork();
            Assert.Equal(before + 1, _wire.Peer.ReceivedUdpPackets);
        }
    }

    [Fact]
    public void A_busy_breath_looks_at_a_sweep_of_idle_pipes_not_at_all_of_them()
    {
        _wire.Peer.StartFlood(40000, 6000, 18, long.MaxValue / 2);
        _wire.Engine.DoWork();
        long before = _wire.Engine.TxPipeLooks;
        for (int breath = 0; breath < 100; breath++)
        {
            _wire.Engine.DoWork();
        }
        Assert.Equal(100 * QosScheduler.SweepPerBreath, _wire.Engine.TxPipeLooks - before);
    }

    [Fact]
    public void A_busy_breath_publishes_only_the_pipes_it_could_have_served()
    {
        _wire.Peer.StartFlood(40000, 6000, 18, long.MaxValue / 2);
        var sender = _apps[Sockets / 2];
        sender.Send("first"u8, EngineHarness.HostAddress, sender.Socket.LocalPort, EngineHarness.PeerAddress, 9);
        for (int breath = 0; breath < 10 * FullSweep && _wire.Peer.ReceivedUdpPackets == 0; breath++)
        {
            _wire.Engine.DoWork(); // until the sweep finds it
        }
        long before = _wire.Engine.TxPipePublishes;
        for (int breath = 0; breath < 100; breath++)
        {
            sender.Send("busy"u8, EngineHarness.HostAddress, sender.Socket.LocalPort, EngineHarness.PeerAddress, 9);
            _wire.Engine.DoWork();
        }
        // The one pipe with packets, once a breath: never the thousand idle ones.
        Assert.Equal(100, _wire.Engine.TxPipePublishes - before);
        Assert.Equal(101, _wire.Peer.ReceivedUdpPackets);
    }

    [Fact]
    public void Sockets_closed_in_the_middle_of_a_sweep_leave_it_working()
    {
        _wire.Peer.StartFlood(40000, 6000, 18, long.MaxValue / 2);
        for (int breath = 0; breath < FullSweep - 1; breath++)
        {
            _wire.Engine.DoWork(); // the sweep's cursor is near the end of the sockets
        }
        foreach (var app in _apps.Skip(100))
        {
            _wire.Close(app); // now it points past them
        }
        var last = _apps[99];
        last.Send("still served"u8, EngineHarness.HostAddress, last.Socket.LocalPort, EngineHarness.PeerAddress, 9);
        for (int breath = 0; breath < 10 && _wire.Peer.ReceivedUdpPackets == 0; breath++)
        {
            _wire.Engine.DoWork();
        }
        Assert.Equal(1, _wire.Peer.ReceivedUdpPackets);
    }

    [Fact]
    public void An_idle_dataplane_finds_a_new_sender_among_a_thousand_at_its_next_breath()
    {
        _apps[Sockets - 1].Send("alone"u8, EngineHarness.HostAddress, _apps[Sockets - 1].Socket.LocalPort, EngineHarness.PeerAddress, 9);
        _wire.Engine.DoWork();
        Assert.Equal(1, _wire.Peer.ReceivedUdpPackets);
    }
}
