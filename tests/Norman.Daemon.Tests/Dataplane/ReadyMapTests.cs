using System.Diagnostics;
using Norman.Core.Pipes;
using Norman.Daemon.Dataplane.Ports;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>
/// With ready maps, a breath looks at the pipes their applications marked, the busy ones and a small sweep: a thousand
/// idle sockets cost it a few words read, a new sender among them leaves at the next breath, busy or idle, and what a
/// hostile process does to its map reaches no other user's sockets.
/// </summary>
public sealed class ReadyMapTests : IDisposable
{
    private const int Sockets = 1000;
    private readonly EngineHarness _wire = new(slotCount: 4);
    private readonly List<AppSide> _apps = new();

    public ReadyMapTests()
    {
        for (int i = 0; i < Sockets; i++)
        {
            // Two users: the first 500 sockets are uid 1000's, the rest uid 1001's.
            _apps.Add(_wire.Bind((ushort)(6000 + i), uid: i < Sockets / 2 ? 1000 : 1001, ready: true));
        }
        _wire.ResolvePeer();
    }

    public void Dispose() => _wire.Dispose();

    private void Send(AppSide app, ReadOnlySpan<byte> payload) =>
        app.Send(payload, EngineHarness.HostAddress, app.Socket.LocalPort, EngineHarness.PeerAddress, 9);

    [Fact]
    public void Each_user_has_one_map_and_its_sockets_the_lowest_free_bits()
    {
        Assert.Equal(2, _wire.ReadyMaps.Count);
        Assert.Same(_apps[0].Socket.Pipe.Ready, _apps[499].Socket.Pipe.Ready);
        Assert.NotSame(_apps[0].Socket.Pipe.Ready, _apps[500].Socket.Pipe.Ready);
        Assert.Equal(Enumerable.Range(0, 500), _apps.Take(500).Select(a => a.Socket.Pipe.ReadyBit));
        Assert.Equal(Enumerable.Range(0, 500), _apps.Skip(500).Select(a => a.Socket.Pipe.ReadyBit));

        // A closed socket's bit goes back once the dataplane has let go of it, and is the next one given.
        _wire.Close(_apps[7]);
        _apps[7].Socket.Dispose();
        var reopened = _wire.Bind(7007, uid: 1000, ready: true);
        Assert.Equal(7, reopened.Socket.Pipe.ReadyBit);
        Send(reopened, "new owner of bit 7"u8);
        _wire.Engine.DoWork();
        Assert.Equal(1, _wire.Peer.ReceivedUdpPackets);
    }

    [Fact]
    public void A_users_map_goes_with_its_last_socket_and_a_new_one_comes_with_its_next()
    {
        var only = _wire.Bind(9000, uid: 2000, ready: true);
        var first = only.Socket.Pipe.Ready!;
        Assert.Equal(3, _wire.ReadyMaps.Count);
        _wire.Close(only);
        only.Socket.Dispose();
        Assert.Equal(2, _wire.ReadyMaps.Count);

        var next = _wire.Bind(9001, uid: 2000, ready: true);
        Assert.NotEqual(first.Id, next.Socket.Pipe.Ready!.Id);
        Assert.Equal(0, next.Socket.Pipe.ReadyBit);
        Send(next, "on the new map"u8);
        _wire.Engine.DoWork();
        Assert.Equal(1, _wire.Peer.ReceivedUdpPackets);
    }

    [Fact]
    public void An_idle_breath_looks_only_at_a_small_sweep_not_at_every_pipe()
    {
        _wire.Engine.DoWork();
        long before = _wire.Engine.TxPipeLooks;
        for (int breath = 0; breath < 100; breath++)
        {
            _wire.Engine.DoWork();
        }
        Assert.Equal(100 * QosScheduler.SweepPerBreathMarked, _wire.Engine.TxPipeLooks - before);
    }

    [Fact]
    public void A_new_sender_among_a_thousand_leaves_at_the_next_breath_idle_or_busy()
    {
        Send(_apps[Sockets - 1], "idle"u8);
        _wire.Engine.DoWork();
        Assert.Equal(1, _wire.Peer.ReceivedUdpPackets);

        _wire.Peer.StartFlood(40000, 6000, 18, long.MaxValue / 2); // every breath receives
        _wire.Engine.DoWork();
        for (int i = 0; i < 50; i++)
        {
            var app = _apps[(i * 37) % Sockets];
            long before = _wire.Peer.ReceivedUdpPackets;
            long looks = _wire.Engine.TxPipeLooks;
            Send(app, "busy"u8);
            _wire.Engine.DoWork();
            Assert.Equal(before + 1, _wire.Peer.ReceivedUdpPackets);
            // The marked pipe and the sweep: its mark was taken, so the next breath does not look at it again for it.
            Assert.InRange(_wire.Engine.TxPipeLooks - looks, 1, 2 + QosScheduler.SweepPerBreathMarked); // and the last sender, busy at its last look
            Assert.False(app.Socket.Pipe.Ready!.Map.IsMarked(app.Socket.Pipe.ReadyBit));
        }
    }

    [Fact]
    public void A_thousand_pipes_with_a_packet_each_leave_at_a_batch_a_breath()
    {
        _wire.Peer.StartFlood(40000, 6000, 18, long.MaxValue / 2);
        _wire.Engine.DoWork();
        _apps.ForEach(app => Send(app, "once"u8));
        int breaths = 0;
        while (_wire.Peer.ReceivedUdpPackets < Sockets && breaths < 1000)
        {
            _wire.Engine.DoWork();
            breaths++;
        }
        Assert.Equal(Sockets, _wire.Peer.ReceivedUdpPackets);
        Assert.InRange(breaths, 1, (Sockets + 31) / 32 + 1);
    }

    [Fact]
    public void A_mark_cleared_by_a_hostile_process_delays_only_its_own_user_and_the_sweep_still_finds_it()
    {
        _wire.Peer.StartFlood(40000, 6000, 18, long.MaxValue / 2);
        _wire.Engine.DoWork();
        var victim = _apps[10]; // uid 1000
        var other = _apps[900]; // uid 1001
        Send(victim, "cleared"u8);
        var map = victim.Socket.Pipe.Ready!.Map;
        for (int w = 0; w < 16; w++)
        {
            map.Take(w); // the hostile process of uid 1000 wipes its user's map
        }
        Send(other, "other user"u8);
        _wire.Engine.DoWork();
        Assert.Equal(1, _wire.Peer.ReceivedUdpPackets); // the other user's packet left at once

        int breaths = 0;
        while (_wire.Peer.ReceivedUdpPackets < 2 && breaths < Sockets)
        {
            _wire.Engine.DoWork();
            breaths++;
        }
        Assert.Equal(2, _wire.Peer.ReceivedUdpPackets);
        Assert.InRange(breaths, 1, Sockets / QosScheduler.SweepPerBreathMarked + 1);
    }

    [Fact]
    public unsafe void Sleeping_arms_one_flag_a_user_not_one_a_pipe_and_a_mark_before_it_keeps_the_dataplane_awake()
    {
        _wire.Engine.EnableSleeping();
        try
        {
            _wire.Engine.DoWork();
            Assert.NotEqual(SleepAllowance.NotNow, _wire.Engine.PrepareToSleep(Stopwatch.GetTimestamp()));
            // No pipe's own flag was touched: a thousand sockets, two users, two flags.
            Assert.All(_apps, app => Assert.Equal(0u, *(uint*)(app.RegionAddress + app.TxRingOffset + PipeLayout.NeedsWakeupOffset)));
            var sender = _apps[Sockets - 1];
            var map = sender.Socket.Pipe.Ready!.Map;
            Assert.True(map.Mark(sender.Socket.Pipe.ReadyBit)); // asleep: an application that publishes now rings
            _wire.Engine.Sleep(0);
            Assert.False(map.Mark(sender.Socket.Pipe.ReadyBit)); // awake again: no ring

            // Marks not yet taken (the two above) keep it from sleeping, and leave its flags down.
            Assert.Equal(SleepAllowance.NotNow, _wire.Engine.PrepareToSleep(Stopwatch.GetTimestamp()));
            Assert.False(map.Mark(sender.Socket.Pipe.ReadyBit));

            Send(sender, "after the sleep"u8);
            _wire.Engine.DoWork();
            Assert.Equal(1, _wire.Peer.ReceivedUdpPackets);
        }
        finally
        {
            _wire.Engine.DisableSleeping();
        }
    }

    [Fact]
    public void Every_bit_set_by_a_hostile_process_costs_only_looks_at_its_own_users_pipes()
    {
        _wire.Engine.DoWork();
        var map = _apps[0].Socket.Pipe.Ready!.Map;
        for (int bit = 0; bit < 16 * 64; bit++)
        {
            map.Mark(bit); // 500 sockets' bits, and 524 that no socket holds
        }
        long before = _wire.Engine.TxPipeLooks;
        _wire.Engine.DoWork();
        Assert.InRange(_wire.Engine.TxPipeLooks - before, 500, 500 + QosScheduler.SweepPerBreathMarked);
        before = _wire.Engine.TxPipeLooks;
        _wire.Engine.DoWork();
        Assert.Equal(QosScheduler.SweepPerBreathMarked, _wire.Engine.TxPipeLooks - before);
        Assert.Equal(0, _wire.Engine.Counters.TotalDrops());
    }
}
