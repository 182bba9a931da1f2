using Norman.Soak;
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
        using var rig = new Rig(classes);
        for (var warm = Stopwatch.StartNew(); warm.ElapsedMilliseconds < 400;)
        {
            rig.Run(50_000);
        }
        var clock = Stopwatch.StartNew();
        long sent = rig.Run(packets);
        return clock.Elapsed.TotalNanoseconds / sent;
    }

    /// <summary>
    /// The same engine and sockets, <paramref name="warmUp"/> packets and then <paramref name="packets"/> more: the unit
    /// <see cref="InstructionCounts"/> runs under callgrind for the egress path.
    /// </summary>
    public static void RunOnce(int classes, long warmUp, long packets)
    {
        using var rig = new Rig(classes);
        rig.Run(warmUp);
        rig.Run(packets);
    }

    /// <summary>An engine on an unlimited virtual wire, <see cref="Sockets"/> sockets whose pipes are kept full, and N classes.</summary>
    private sealed class Rig : IDisposable
    {
        private readonly Engine _engine;
        private readonly NormanSocket[] _sockets = new NormanSocket[Sockets];
        private readonly RingProducer[] _tx = new RingProducer[Sockets];
        private readonly QosStore _qos;
        private readonly NetAddress _host;
        private readonly NetAddress _peer;
        private readonly int _payload = BenchDaemon.PayloadFor(64);

        public Rig(int classes)
        {
            var (engine, peer, host) = BenchWire.Create();
            _engine = engine;
            _host = host.Address;
            _peer = peer.Address;
            engine.Post(new AddNeighbourCommand(peer.Address, peer.Mac));
            _qos = new QosStore(engine, new AppNames());
            // Guarantees that add up to 100 Mbit/s, ceilings far above: every class schedules in both phases. The
            // sockets' ports are 5000…5015: classes past the 16th match nobody, and cost only if the scheduler walks
            // them. All in one swap, as a policy file is restored.
            _qos.Restore(Enumerable.Range(0, classes).SelectMany(c => new[]
            {
                (new List<string> { "class", $"c{c}", "band", $"{c % 3}", "weight", $"{1 + c % 7}", "rate", $"{100_000 / classes}k", "ceil", "400G" }, "bench"),
                (new List<string> { "match", $"c{c}", "udp", "sport", $"{5000 + c % Sockets}" }, "bench"),
            }).ToList());
            var owner = new PeerIdentity(Environment.ProcessId, 0, 0, "bench", "bench", "/");
            for (int s = 0; s < Sockets; s++)
            {
                _sockets[s] = new NormanSocket(s + 1, owner, IpProtocols.Udp, NetAddress.FromV4(0), (ushort)(5000 + s), 256, PipeLayout.DefaultSlotSize);
                engine.Post(new AddSocketCommand(_sockets[s].Pipe));
                _tx[s] = new RingProducer(_sockets[s].Region.Address + PipeLayout.TxRingOffset,
                    _sockets[s].Region.Address + PipeLayout.TxSlotsOffset(256, PipeLayout.DefaultSlotSize), 256, PipeLayout.DefaultSlotSize);
            }
        }

        /// <summary>Refills every pipe and runs a breath, until <paramref name="count"/> packets have left; returns how many did.</summary>
        public long Run(long count)
        {
            long sentBefore = _engine.Counters.PortTxPackets;
            for (long breath = 0; _engine.Counters.PortTxPackets - sentBefore < count && breath < count; breath++)
            {
                for (int s = 0; s < Sockets; s++)
                {
                    for (var slot = _tx[s].Claim(); !slot.IsEmpty; slot = _tx[s].Claim())
                    {
                        _tx[s].Commit(UdpPacketBuilder.WriteHeaders(slot, _host, (ushort)(5000 + s), _peer, 9000, _payload));
                    }
                    _tx[s].Publish();
                }
                _engine.DoWork();
            }
            return _engine.Counters.PortTxPackets - sentBefore;
        }

        public void Dispose()
        {
            _qos.Dispose();
            foreach (var socket in _sockets)
            {
                socket.Dispose();
            }
        }
    }
}
