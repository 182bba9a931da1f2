using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;
using Norman.Daemon.Qos;

namespace Norman.Bench;

/// <summary>
/// What choosing the next TX pipe costs: one thread plays <see cref="Sockets"/> applications that keep their TX pipes
/// full and runs the engine's breaths, on an unlimited wire, so every packet goes through schedule → validate →
/// neighbour → port. With no class the plain round robin serves; with N classes (the sockets spread over them by
/// port, each class with its own weight, guarantee and ceiling) the QoS scheduler does.
/// </summary>
public static unsafe class QosSchedulerScenario
{
    public const int Sockets = 16;

    public static double NanosecondsPerPacket(long packets, int classes)
    {
        var (engine, peer, host) = BenchWire.Create();
        engine.Post(new AddNeighbourCommand(peer.Address, peer.Mac));
        var names = new AppNames();
        using var qos = new QosStore(engine, names);
        // Guarantees that add up to 100 Mbit/s, ceilings far above: every class schedules in both phases. The sockets'
        // ports are 5000…5015: classes past the 16th match nobody, and cost only if the scheduler walks them. All in
        // one swap, as a policy file is restored.
        qos.Restore(Enumerable.Range(0, classes).SelectMany(c => new[]
        {
            (new List<string> { "class", $"c{c}", "band", $"{c % 3}", "weight", $"{1 + c % 7}", "rate", $"{100_000 / classes}k", "ceil", "400G" }, "bench"),
            (new List<string> { "match", $"c{c}", "udp", "sport", $"{5000 + c % Sockets}" }, "bench"),
        }).ToList());
        var owner = new PeerIdentity(Environment.ProcessId, 0, 0, "bench", "bench", "/");
        var sockets = new NormanSocket[Sockets];
        var tx = new RingProducer[Sockets];
        for (int s = 0; s < Sockets; s++)
        {
            sockets[s] = new NormanSocket(s + 1, owner, IpProtocols.Udp, NetAddress.FromV4(0), (ushort)(5000 + s), 256, PipeLayout.DefaultSlotSize);
            engine.Post(new AddSocketCommand(sockets[s].Pipe));
            tx[s] = new RingProducer(sockets[s].Region.Address + PipeLayout.TxRingOffset(256, PipeLayout.DefaultSlotSize), 256, PipeLayout.DefaultSlotSize);
        }
        int payload = DataplaneScenarios.PayloadFor(64);
        long Run(long count)
        {
            long sentBefore = engine.Counters.PortTxPackets;
            for (long breath = 0; engine.Counters.PortTxPackets - sentBefore < count && breath < count; breath++)
            {
                for (int s = 0; s < Sockets; s++)
                {
                    for (var slot = tx[s].Claim(); !slot.IsEmpty; slot = tx[s].Claim())
                    {
                        tx[s].Commit(UdpPacketBuilder.WriteHeaders(slot, host.Address, (ushort)(5000 + s), peer.Address, 9000, payload));
                    }
                    tx[s].Publish();
                }
                engine.DoWork();
            }
            return engine.Counters.PortTxPackets - sentBefore;
        }
        for (var warm = Stopwatch.StartNew(); warm.ElapsedMilliseconds < 400;)
        {
            Run(50_000);
        }
        var clock = Stopwatch.StartNew();
        long sent = Run(packets);
        double nanoseconds = clock.Elapsed.TotalNanoseconds / sent;
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }
        return nanoseconds;
    }
}
