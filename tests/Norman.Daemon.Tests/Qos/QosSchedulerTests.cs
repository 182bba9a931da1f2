using Norman.Daemon.Dataplane;
using Norman.Daemon.Qos;
using Norman.Daemon.Tests.Dataplane;

namespace Norman.Daemon.Tests.Qos;

/// <summary>The acceptance figures, on a 1 Gbit/s virtual wire driven on the test's own clock.</summary>
public sealed class QosSchedulerTests
{
    private const double Line = QosWire.LineRate;

    [Fact]
    public void Without_classes_two_saturating_sockets_share_the_line_evenly()
    {
        using var wire = new QosWire();
        var database = wire.AddSender(6379, "kvdb", wireBitsPerSecond: 600_000_000);
        var bob = wire.AddSender(7000, "bobapp");
        wire.Run(2);
        // Round robin between pipes: the database, asking 600 Mbit/s, gets only half the line.
        Assert.InRange(database.Rate(100, 200), 0.48 * Line, 0.52 * Line);
        Assert.InRange(bob.Rate(100, 200), 0.48 * Line, 0.52 * Line);
    }

    [Theory]
    [InlineData(10)]
    [InlineData(1)] // the line frees room for a small packet before a large one: the small one must not overtake
    public void Without_classes_eight_bulk_sockets_leave_a_socket_of_smaller_packets_a_ninth_of_the_bytes(int stepMicroseconds)
    {
        using var wire = new QosWire(stepTicks: System.Diagnostics.Stopwatch.Frequency / 1_000_000 * stepMicroseconds);
        var database = wire.AddSender(6379, "kvdb", wireBitsPerSecond: 300_000_000, payload: 1000);
        var bobs = Enumerable.Range(0, 8).Select(i => wire.AddSender((ushort)(7000 + i), "bobapp")).ToList();
        wire.Run(2, sampleEvery: 10_000 / stepMicroseconds);
        // Deficit round robin between pipes, fair by bytes on the wire, whatever the sizes of their packets.
        Assert.InRange(database.Rate(100, 200), Line / 9 * 0.98, Line / 9 * 1.02);
        Assert.InRange(bobs.Sum(b => b.Rate(100, 200)), Line * 8 / 9 * 0.98, Line * 8 / 9 * 1.02);
    }

    [Fact]
    public void A_higher_band_gets_all_it_asks_for_and_the_saturating_app_gets_the_rest()
    {
        using var wire = new QosWire();
        var database = wire.AddSender(6379, "kvdb", wireBitsPerSecond: 600_000_000);
        var bob = wire.AddSender(7000, "bobapp");
        wire.Store.AddOrChange("database", ["band", "0", "match", "app", "kvdb"], change: false);
        wire.Run(2);
        double databaseRate = database.Rate(100, 200);
        double bobRate = bob.Rate(100, 200);
        Assert.InRange(databaseRate, 600e6 * 0.98, 600e6 * 1.02);
        Assert.InRange(bobRate, (Line - 600e6) * 0.98, (Line - 600e6) * 1.02);
        Assert.InRange(databaseRate + bobRate, Line * 0.98, Line * 1.001);
    }

    [Fact]
    public void Two_classes_weighted_3_to_1_in_one_band_share_75_25()
    {
        using var wire = new QosWire();
        var heavy = wire.AddSender(5001, "heavy");
        var light = wire.AddSender(5002, "light");
        wire.Store.AddOrChange("heavy", ["weight", "3", "match", "app", "heavy"], change: false);
        wire.Store.AddOrChange("light", ["weight", "1", "match", "app", "light"], change: false);
        wire.Run(2);
        double heavyRate = heavy.Rate(100, 200);
        double lightRate = light.Rate(100, 200);
        double share = heavyRate / (heavyRate + lightRate);
        Assert.InRange(share, 0.75 * 0.98, 0.75 * 1.02); // measured: 0.7500
        Assert.InRange(heavyRate + lightRate, Line * 0.98, Line * 1.001);
    }

    [Fact]
    public void A_class_with_a_100M_ceiling_never_exceeds_it_by_1_percent_over_any_one_second_window()
    {
        using var wire = new QosWire();
        var capped = wire.AddSender(5001, "capped");
        wire.Store.AddOrChange("capped", ["ceil", "100M", "match", "app", "capped"], change: false);
        wire.Run(3);
        // Every one-second window (samples every 10 ms), starting from the first, burst included.
        for (int start = 0; start + 100 < capped.Samples.Count; start++)
        {
            Assert.True(capped.Rate(start, start + 100) <= 101e6, $"window at {start * 10} ms: {capped.Rate(start, start + 100) / 1e6:F2} Mbit/s");
        }
        Assert.InRange(capped.Rate(100, 200), 99e6, 101e6);
    }

    [Theory]
    [InlineData("rate 100M", 190e6)] // its rate, plus a tenth (weight 1 against 9) of the 900M left
    [InlineData("rate 400M", 460e6)]
    [InlineData("rate 400M ceil 450M", 450e6)] // borrowing stops at the ceiling
    public void A_class_gets_its_rate_plus_its_weights_share_of_what_is_left_up_to_its_ceiling(string settings, double expected)
    {
        using var wire = new QosWire();
        var guaranteed = wire.AddSender(5001, "guaranteed");
        var weighted = wire.AddSender(5002, "weighted");
        wire.Store.AddOrChange("guaranteed", [.. settings.Split(' '), "match", "app", "guaranteed"], change: false);
        wire.Store.AddOrChange("weighted", ["weight", "9", "match", "app", "weighted"], change: false);
        wire.Run(2);
        Assert.InRange(guaranteed.Rate(100, 200), expected * 0.99, expected * 1.01);
        Assert.InRange(weighted.Rate(100, 200), (Line - expected) * 0.99, (Line - expected) * 1.01);
    }

    [Fact]
    public void Sockets_of_one_class_share_its_turns()
    {
        using var wire = new QosWire();
        var first = wire.AddSender(5001, "bobapp");
        var second = wire.AddSender(5002, "bobapp");
        var other = wire.AddSender(5003, "other");
        wire.Store.AddOrChange("bob", ["ceil", "200M", "match", "app", "bobapp"], change: false);
        wire.Run(2);
        Assert.InRange(first.Rate(100, 200), 99e6 * 0.95, 101e6 * 1.05);
        Assert.InRange(second.Rate(100, 200), 99e6 * 0.95, 101e6 * 1.05);
        Assert.InRange(other.Rate(100, 200), 800e6 * 0.98, 800e6 * 1.02);
    }

    [Fact]
    public void Ingress_policing_drops_above_the_rate_and_counts_for_the_class_and_the_socket()
    {
        using var wire = new QosWire();
        var flooded = wire.Wire.Bind(5000, app: "flooded");
        wire.Store.AddOrChange("flooded", ["police", "10M", "match", "app", "flooded"], change: false);
        wire.Wire.Peer.StartFlood(40000, 5000, QosWire.Payload, long.MaxValue);
        long delivered = 0;
        long start = wire.Now;
        wire.Run(0);
        var now = wire.Now;
        for (int step = 0; step < 100_000; step++) // one second
        {
            now += QosWire.StepTicks;
            wire.Wire.Engine.DoWork(now);
            delivered += flooded.ReceiveAll().Count;
        }
        wire.Wire.Peer.StartFlood(40000, 5000, QosWire.Payload, 0);
        double deliveredBits = delivered * (double)QosWire.WireBytesPerFrame * 8;
        // 10 Mbit/s for a second, plus one burst (a millisecond, at least two frames).
        Assert.InRange(deliveredBits, 9.9e6, 10.2e6);
        long policed = flooded.Socket.Pipe.Counters.Drops(DropReason.Policed);
        Assert.True(policed > 70_000, $"{policed} policed drops");
        Assert.Equal(policed, wire.Store.Show().Single(v => v.Class.Name == "flooded").Counters.PolicedDrops);
        Assert.Equal(0, flooded.Socket.Pipe.Counters.Drops(DropReason.RxPipeFull));
        _ = start;
    }

    [Fact]
    public void A_class_marks_its_packets_with_its_dscp_and_a_valid_header_checksum()
    {
        using var wire = new QosWire();
        wire.Wire.Peer.KeepDatagrams = true;
        var app = wire.Wire.Bind(5000, app: "voice");
        var plain = wire.Wire.Bind(5001, app: "plain");
        wire.Store.AddOrChange("voice", ["dscp", "ef", "match", "app", "voice"], change: false);
        app.Send("hello"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 4000);
        plain.Send("plain"u8, EngineHarness.HostAddress, 5001, EngineHarness.PeerAddress, 4000);
        wire.Run(0.001); // on the wire's clock: both frames have arrived a millisecond later
        var received = new[] { wire.Wire.Peer.TakeDatagram(TimeSpan.Zero), wire.Wire.Peer.TakeDatagram(TimeSpan.Zero) };
        // The peer parses each frame and drops one with a bad IPv4 checksum: both arriving proves the patch is right.
        Assert.Equal(46, received.Single(d => d!.SourcePort == 5000)!.Dscp);
        Assert.Equal(0, received.Single(d => d!.SourcePort == 5001)!.Dscp);
    }

    [Fact]
    public void A_dscp_match_puts_a_socket_in_a_class_by_the_dscp_its_packets_carry()
    {
        using var wire = new QosWire();
        var marked = wire.Wire.Bind(5000, app: "voice");
        var plain = wire.Wire.Bind(5001, app: "voice");
        wire.Store.AddOrChange("voice", ["band", "0", "match", "dscp", "ef"], change: false);
        var slot = marked.Tx.Claim();
        marked.Tx.Commit(Norman.Core.Packets.UdpPacketBuilder.WriteHeaders(slot, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 4000, 0, tos: 46 << 2));
        marked.Tx.Publish();
        plain.Send([], EngineHarness.HostAddress, 5001, EngineHarness.PeerAddress, 4000);
        wire.Run(0.001);
        var classes = wire.Store.Show().ToDictionary(v => v.Class.Name, v => v.Counters.Packets);
        Assert.Equal(1, classes["voice"]);
        Assert.Equal(1, classes["default"]);
    }

    [Fact]
    public void A_dscp_match_polices_by_what_a_socket_receives_and_schedules_by_what_it_sends()
    {
        using var wire = new QosWire();
        var app = wire.Wire.Bind(5000, app: "voice");
        wire.Store.AddOrChange("voice", ["police", "1M", "match", "dscp", "ef"], change: false);
        // It sends EF first, so it is scheduled in 'voice'…
        var slot = app.Tx.Claim();
        app.Tx.Commit(Norman.Core.Packets.UdpPacketBuilder.WriteHeaders(slot, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 4000, 0, tos: 46 << 2));
        app.Tx.Publish();
        wire.Run(0.001);
        Assert.Equal(1, wire.Store.Show().Single(v => v.Class.Name == "voice").Counters.Packets);
        // …but what it receives is best effort: not policed by the class its sending chose.
        wire.Wire.Peer.StartFlood(40000, 5000, QosWire.Payload, 2000);
        for (int i = 0; i < 100; i++)
        {
            wire.Run(0.001);
            app.ReceiveAll();
        }
        Assert.Equal(0, app.Socket.Pipe.Counters.Drops(DropReason.Policed));
        Assert.Equal(2000, app.Socket.Pipe.Counters.RxPackets);
    }
}
