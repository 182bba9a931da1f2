using Norman.Soak;
using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Daemon.Capture;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane;

namespace Norman.Bench;

/// <summary>
/// The dataplane's own cost per packet, free of thread scheduling: one thread runs the engine's breaths and drains
/// the application's RX ring in turn, so the time per packet is the engine's plus a ring drain, on one core. Used to
/// price a stage (a capture tap): two engines, one with the stage and one without, are built side by side and run in
/// short alternating trials, so that both see the same moods of a shared machine; the cost is the median of the
/// trials' paired ratios.
/// </summary>
public static unsafe class EngineOnlyScenario
{
    /// <summary>
    /// Median ns per packet without and with a capture filtered by <paramref name="captureFilter"/> (with null, two
    /// identical engines: what the method itself reads as a cost), and the median paired cost in %.
    /// <paramref name="tappedFirst"/> builds the tapped engine first: where each lands in memory matters by a couple of
    /// percent, so callers alternate it.
    /// </summary>
    public static (double AloneNs, double TappedNs, double CostPercent) CompareCapture(long packets, int trials, string? captureFilter, bool tappedFirst)
    {
        var first = new Rig(tappedFirst ? captureFilter : null);
        var second = new Rig(tappedFirst ? null : captureFilter);
        using var alone = tappedFirst ? second : first;
        using var tapped = tappedFirst ? first : second;
        return Compare(alone, tapped, packets, trials);
    }

    /// <summary>
    /// Median ns per packet over IPv4 and over IPv6 (the same 64-byte payload, a dual-stack socket on :: for IPv6), and
    /// the median paired ratio IPv6/IPv4; with <paramref name="conntrack"/>, connection tracking sees every packet.
    /// </summary>
    /// <remarks>
    /// With <paramref name="everyPolicy"/>, scenario C's policy on both: 1,000 ingress rules the flow does not match, a
    /// rule looking its source up in a 10,000-address set of its family, conntrack asked about every packet, 10 QoS
    /// classes and a capture matching nothing.
    /// </remarks>
    public static (double V4Ns, double V6Ns, double Ratio) CompareFamilies(long packets, int trials, bool conntrack, bool everyPolicy = false)
    {
        using var v4 = new Rig(everyPolicy ? "tcp port 9" : null, conntrack, everyPolicy: everyPolicy);
        using var v6 = new Rig(everyPolicy ? "tcp port 9" : null, conntrack, ipv6: true, everyPolicy: everyPolicy);
        var (v4Ns, v6Ns, costPercent) = Compare(v4, v6, packets, trials);
        return (v4Ns, v6Ns, 1 + costPercent / 100);
    }

    /// <summary>Runs two rigs in short alternating trials; the second's median cost over the first's, in %.</summary>
    private static (double FirstNs, double SecondNs, double CostPercent) Compare(Rig alone, Rig tapped, long packets, int trials)
    {
        // Warm-up by time, not count: tiered compilation promotes a method to its optimised, PGO-guided code only
        // after it has been called for a while and 100 ms have passed without new methods being jitted.
        for (var warm = Stopwatch.StartNew(); warm.ElapsedMilliseconds < 400;)
        {
            alone.Run(50_000);
            tapped.Run(50_000);
        }
        long perTrial = Math.Max(10_000, packets / trials);
        var aloneNs = new double[trials];
        var tappedNs = new double[trials];
        var ratios = new double[trials];
        for (int t = 0; t < trials; t++)
        {
            // Each pair in both orders in turn, so that neither always runs on a warmer cache.
            if (t % 2 == 0)
            {
                aloneNs[t] = alone.Run(perTrial);
                tappedNs[t] = tapped.Run(perTrial);
            }
            else
            {
                tappedNs[t] = tapped.Run(perTrial);
                aloneNs[t] = alone.Run(perTrial);
            }
            ratios[t] = tappedNs[t] / aloneNs[t];
        }
        return (Median(aloneNs), Median(tappedNs), (Median(ratios) - 1) * 100);
    }

    /// <summary>
    /// One engine, with a capture filtered by <paramref name="captureFilter"/> or none (null) and, with
    /// <paramref name="conntrack"/>, a rule that makes connection tracking see every packet, that floods
    /// <paramref name="warmUp"/> packets and then <paramref name="packets"/> more: the unit
    /// <see cref="InstructionCounts"/> runs under callgrind.
    /// </summary>
    public static void RunOnce(string? captureFilter, long warmUp, long packets, bool conntrack = false)
    {
        using var rig = new Rig(captureFilter, conntrack);
        rig.Run(warmUp);
        rig.Run(packets);
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    /// <summary>An engine on an unlimited virtual wire, a socket the peer floods, and (maybe) a capture tap.</summary>
    private sealed class Rig : IDisposable
    {
        private readonly Engine _engine;
        private readonly Norman.Daemon.Dataplane.Ports.SimulatedPeer _peer;
        private readonly NormanSocket _socket;
        private readonly RingConsumer _rx;
        private readonly CaptureTap? _tap;

        private readonly NetAddress? _destination;

        /// <summary>
        /// An engine, a socket and maybe a tap; <paramref name="ipv6"/>: flooded over IPv6, to a dual-stack socket on ::,
        /// instead of over IPv4 to one on 0.0.0.0; <paramref name="everyPolicy"/>: scenario C's rules, set and QoS classes.
        /// </summary>
        public Rig(string? captureFilter, bool conntrack = false, bool ipv6 = false, bool everyPolicy = false)
        {
            HostInterface host;
            (_engine, _peer, host) = BenchWire.Create();
            _destination = ipv6 ? host.Address6 : null;
            var names = new Norman.Daemon.Policy.AppNames();
            var policy = new Norman.Daemon.Policy.PolicyStore(_engine, names, null);
            if (everyPolicy)
            {
                policy.Restore(BenchDaemon.RulesNotMatching(1000), "bench");
                // A set of addresses the peer is not among, of the flow's family, and one rule that looks the source up in it.
                policy.AddSet("blocked", ipv6 ? "ipv6_addr" : "ipv4_addr", Enumerable.Range(0, 10_000)
                    .Select(i => ipv6 ? $"2001:db8:{i >> 8 & 255:x}::{i & 255:x}" : $"203.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}").ToList());
                policy.Add(Norman.Daemon.Policy.Chain.Ingress, [ipv6 ? "ip6" : "ip", "saddr", "@blocked", "drop"]);
                new Norman.Daemon.Qos.QosStore(_engine, names).Restore(Enumerable.Range(0, 10).SelectMany(c => new[]
                {
                    (new List<string> { "class", $"c{c}", "band", $"{c % 3}", "weight", $"{1 + c % 7}" }, "bench"),
                    (new List<string> { "match", $"c{c}", "udp", "sport", $"{5000 + c}" }, "bench"),
                }).ToList());
            }
            if (conntrack || everyPolicy)
            {
                // A rule that asks connection tracking about every packet, which this flow never matches.
                policy.Add(Norman.Daemon.Policy.Chain.Ingress, ["ct", "state", "invalid", "drop"]);
            }
            var owner = new PeerIdentity(Environment.ProcessId, 0, 0, "bench", "bench", "/");
            _socket = new NormanSocket(1, owner, IpProtocols.Udp, ipv6 ? HostInterface.AnyV6 : NetAddress.FromV4(0), 5000, 1024, PipeLayout.DefaultSlotSize);
            _engine.Post(new AddSocketCommand(_socket.Pipe));
            if (captureFilter is not null)
            {
                _tap = new CaptureTap(1, captureFilter, 96, true, true, -1, -1);
                _engine.Post(new AddTapCommand(_tap));
            }
            _rx = new RingConsumer(_socket.Region.Address + PipeLayout.RxRingOffset, _socket.Region.Address + PipeLayout.RxSlotsOffset, 1024, PipeLayout.DefaultSlotSize);
        }

        /// <summary>Floods <paramref name="count"/> 64-byte frames through the engine; returns ns per packet delivered.</summary>
        public double Run(long count)
        {
            _peer.StartFlood(40000, 5000, BenchDaemon.PayloadFor(64), count, destination: _destination);
            long received = 0;
            long start = Stopwatch.GetTimestamp();
            for (long breath = 0; received < count && breath < count; breath++)
            {
                _engine.DoWork();
                int available = _rx.Available();
                for (int i = 0; i < available; i++)
                {
                    _rx.Advance();
                }
                _rx.Publish();
                received += available;
            }
            return Stopwatch.GetElapsedTime(start).TotalNanoseconds / Math.Max(1, received);
        }

        public void Dispose()
        {
            _tap?.Dispose();
            _socket.Dispose();
        }
    }
}
