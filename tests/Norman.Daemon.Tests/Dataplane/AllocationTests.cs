using Norman.Core.Packets;

namespace Norman.Daemon.Tests.Dataplane;

public sealed class AllocationTests
{
    [Theory]
    [InlineData(false, false, false)]
    [InlineData(true, false, false)]
    [InlineData(false, true, false)]
    [InlineData(false, false, true)]
    public void The_dataplane_loop_allocates_nothing_over_a_million_packets_each_way(bool withPolicy, bool withQos, bool beside100Marking)
    {
        using var wire = new EngineHarness(slotCount: 1024);
        wire.ResolvePeer();
        using var qos = new Norman.Daemon.Qos.QosStore(wire.Engine, wire.Names);
        if (withQos)
        {
            // The QoS scheduler instead of plain round robin: a priority class with a guarantee, a DSCP mark and
            // (generous) ingress policing for the test's socket, and 8 weighted classes with ceilings beside it.
            qos.AddOrChange("test", ["band", "0", "rate", "1G", "dscp", "ef", "police", "100G", "match", "app", "testapp"], change: false);
            for (int i = 0; i < 8; i++)
            {
                qos.AddOrChange($"other{i}", ["weight", $"{i + 1}", "ceil", "1G", "match", "uid", $"{2000 + i}"], change: false);
            }
        }
        if (withPolicy)
        {
            // 100 rules that do not match, a pcap rule and a counting rule that do, connection tracking, in both chains.
            var policy = new Norman.Daemon.Policy.PolicyStore(wire.Engine, wire.Names, null);
            foreach (var chain in new[] { Norman.Daemon.Policy.Chain.Ingress, Norman.Daemon.Policy.Chain.Egress })
            {
                for (int port = 1; port <= 100; port++)
                {
                    policy.Add(chain, ["udp", "dport", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "drop"]);
                }
                policy.Add(chain, ["pcap", "udp and not port 53", "count"]);
                policy.Add(chain, ["ct", "state", "invalid", "drop"]);
                policy.Add(chain, ["app", "testapp", "accept"]);
            }
            // And a capture of everything UDP that nobody reads: its ring fills and then counts drops.
            var tap = new Norman.Daemon.Capture.CaptureTap(1, "udp", 128, inbound: true, outbound: true, onlyUid: -1, onlyAppId: -1);
            wire.Engine.Post(new Norman.Daemon.Dataplane.AddTapCommand(tap));
        }
        wire.Peer.KeepDatagrams = false;
        if (beside100Marking)
        {
            // Ready maps: the application marks its publishes, and the scheduler takes marks beside 100 idle sockets.
            for (int i = 0; i < 100; i++)
            {
                wire.Bind((ushort)(6000 + i), ready: true);
            }
        }
        var app = wire.Bind(5000, ready: beside100Marking);
        const int Packets = 1_000_000;
        var payload = new byte[64];

        RunBothWays(wire, app, payload, 10_000); // warm up: JIT tiers, statics, first-touch of pipe pages
        long before = GC.GetAllocatedBytesForCurrentThread();
        var (received, sent) = RunBothWays(wire, app, payload, Packets);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(Packets, app.Socket.Pipe.Counters.RxPackets - 10_000);
        Assert.Equal(Packets, received);
        Assert.Equal(Packets, sent);
        Assert.Equal(0, allocated);
        Assert.Equal(0, wire.Engine.Counters.TotalDrops());
    }

    // No assertion inside: the measurement window must hold the dataplane and the application's ring calls only.
    private static (long Received, long Sent) RunBothWays(EngineHarness wire, AppSide app, byte[] payload, int packets)
    {
        long peerBefore = wire.Peer.ReceivedUdpPackets;
        wire.Peer.StartFlood(40000, 5000, payload.Length, packets);
        long received = 0;
        int sent = 0;
        for (int breath = 0; breath < packets && (received < packets || sent < packets || wire.Peer.ReceivedUdpPackets - peerBefore < packets); breath++)
        {
            for (int i = 0; i < 32 && sent < packets; i++, sent++)
            {
                var slot = app.Tx.Claim();
                if (slot.IsEmpty)
                {
                    break;
                }
                payload.CopyTo(slot[UdpPacketBuilder.HeaderLengthV4..]);
                app.Tx.Commit(UdpPacketBuilder.WriteHeaders(slot, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000, payload.Length));
            }
            app.Tx.Publish();
            if (app.Socket.Pipe.Ready is { } ready)
            {
                ready.Map.Mark(app.Socket.Pipe.ReadyBit);
            }
            wire.Engine.DoWork();
            int available = app.Rx.Available();
            for (int i = 0; i < available; i++)
            {
                app.Rx.Advance();
            }
            app.Rx.Publish();
            received += available;
        }
        return (received, wire.Peer.ReceivedUdpPackets - peerBefore);
    }
}
