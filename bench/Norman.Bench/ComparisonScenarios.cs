using Norman.Soak;

namespace Norman.Bench;

/// <summary>
/// The groups of scenarios that put Norman beside its floor and beside the kernel (A, C, E, F and G; B is the
/// "dataplane" group and D the "kernel" group): each returns its figures, the median of <c>runs</c> runs.
/// </summary>
public static class ComparisonScenarios
{
    /// <summary>A: the bare shared-memory ring between two processes, 64- and 1500-byte frames.</summary>
    public static IEnumerable<Measurement> RawRing(int runs, long packets64, long packets1500)
    {
        foreach (int frame in new[] { 64, 1500 })
        {
            var figure = new Measurement($"raw_ring_mpps_{frame}", $"A: bare SPSC shared-memory ring between two processes, {frame}-byte frames, batches of 32", "Mpps");
            for (int run = 0; run < runs; run++)
            {
                figure.Add(RawRingScenario.PacketsPerSecond(frame, frame == 64 ? packets64 : packets1500) / 1e6);
            }
            yield return figure;
        }
    }

    /// <summary>
    /// C: every policy on — N ingress rules this flow does not match, a rule looking the source up in a 10,000-address
    /// set, connection tracking asked about every packet, 10 QoS classes and a capture whose filter matches nothing.
    /// </summary>
    public static IEnumerable<Measurement> EveryPolicy(int runs, long packets, Action<long> allocated)
    {
        foreach (int rules in new[] { 1000, 10000 })
        {
            var figure = new Measurement($"norman_policy{rules / 1000}k_mpps_64",
                $"C: peer → application, 64-byte frames, {rules} rules + a 10,000-address set + conntrack + 10 QoS classes + a capture matching nothing", "Mpps");
            var dataplane = new Measurement($"norman_policy{rules / 1000}k_ns_per_packet_64", $"C: dataplane core time per packet handled, {rules} rules and every other policy on", "ns");
            for (int run = 0; run < runs; run++)
            {
                var measured = DataplaneScenarios.PeerToApplication(64, packets, rules, setSize: 10_000, captureFilter: "tcp port 9",
                    conntrack: true, qosClasses: 10);
                figure.Add(measured.Pps / 1e6);
                dataplane.Add(1e9 / measured.ProcessedPps);
                allocated(measured.AllocatedBytes);
            }
            yield return figure;
            yield return dataplane;
        }
    }

    /// <summary>E: request/response round trips through Norman and, where namespaces can be made, through the kernel.</summary>
    public static IEnumerable<Measurement> Latency(int runs, int roundTrips)
    {
        int payload = BenchDaemon.PayloadFor(64);
        var norman = Percentiles("rtt_norman", "E: round trip application → Norman → wire → echoing peer → Norman → application (busy-polling application)");
        for (int run = 0; run < runs; run++)
        {
            var trips = DataplaneScenarios.NormanRoundTrips(payload, roundTrips);
            Add(norman, (trips.Percentile(50), trips.Percentile(99), trips.Percentile(99.9)));
        }
        foreach (var figure in norman)
        {
            yield return figure;
        }
        var native = Percentiles("rtt_libnorman", "E: the same from a C program through libnorman (MSG_DONTWAIT polling)");
        for (int run = 0; run < runs; run++)
        {
            Add(native, DataplaneScenarios.LibnormanRoundTrips(payload, roundTrips));
        }
        foreach (var figure in native)
        {
            yield return figure;
        }
        if (RealWireScenarios.WhyNot() is { } why)
        {
            Console.Error.WriteLine($"skipping the kernel's round trips: {why}");
            yield break;
        }
        var kernel = Percentiles("rtt_kernel", "E: round trip UDP between two namespaces over veth through the kernel (blocking sockets)");
        for (int run = 0; run < runs; run++)
        {
            Add(kernel, RealWireScenarios.KernelRoundTrips(payload, roundTrips));
        }
        foreach (var figure in kernel)
        {
            yield return figure;
        }
    }

    /// <summary>F: throughput with 1 to 1,000,000 tracked flows and 1 to 1,000 sockets; memory per flow and per idle socket.</summary>
    public static IEnumerable<Measurement> Scale(int runs, long packets, bool quick)
    {
        var perFlow = new Measurement("bytes_per_flow", "F: connection tracking's memory per flow it can hold (hash table at most 59% full, entry, free list)", "bytes");
        foreach (var (flows, name) in new[] { (1, "1"), (1_000, "1k"), (100_000, "100k"), (1_000_000, "1m") })
        {
            var figure = new Measurement($"flows_{name}_mpps", $"F: peer → application, 64-byte frames from {flows:N0} flows, each tracked by conntrack", "Mpps");
            var tracked = new Measurement($"flows_{name}_tracked", $"F: flows conntrack held at the end of the {flows:N0}-flow run", "flows");
            for (int run = 0; run < runs; run++)
            {
                // At least two packets a flow, so that most lookups find their flow rather than create it.
                var measured = DataplaneScenarios.PeerToApplication(64, Math.Max(packets, 2L * flows), conntrack: true, flows: flows);
                figure.Add(measured.Pps / 1e6);
                tracked.Add(measured.TrackedFlows);
                if (flows == 1_000_000)
                {
                    perFlow.Add(measured.ConntrackBytesPerFlow); // a table sized for a million flows
                }
            }
            yield return figure;
            yield return tracked;
        }
        yield return perFlow;
        foreach (int sockets in quick ? new[] { 1, 1000 } : new[] { 1, 10, 100, 1000 })
        {
            var figure = new Measurement($"sockets_{sockets}_mpps", $"F: peer → {sockets} socket(s) in turn, one application thread draining them all, 64-byte frames", "Mpps");
            for (int run = 0; run < runs; run++)
            {
                figure.Add(SocketScaleScenario.PacketsPerSecond(sockets, packets) / 1e6);
            }
            yield return figure;
        }
        var alone = new Measurement("beside_idle_0_mpps", "F: peer → application, 64-byte frames, no other socket (paired with the next)", "Mpps");
        var besideIdle = new Measurement("beside_idle_1000_mpps", "F: the same with 1,000 idle sockets bound beside it (64-slot pipes)", "Mpps");
        for (int run = 0; run < runs; run++)
        {
            alone.Add(DataplaneScenarios.PeerToApplication(64, packets).Pps / 1e6);
            besideIdle.Add(DataplaneScenarios.PeerToApplication(64, packets, beside: daemon => SocketScaleScenario.IdleSockets(daemon, 1000)).Pps / 1e6);
        }
        yield return alone;
        yield return besideIdle;
        var idle = new Measurement("bytes_per_idle_socket", "F: resident memory an idle bound socket adds (daemon and application in one process, 1,000 sockets, 1,024-slot pipes)", "bytes");
        for (int run = 0; run < runs; run++)
        {
            idle.Add(SocketScaleScenario.ResidentBytesPerIdleSocket(1000));
        }
        yield return idle;
    }

    /// <summary>G: opening a socket, and a 10,000-rule policy taking effect under traffic.</summary>
    public static IEnumerable<Measurement> Control(int runs, bool quick)
    {
        var hello = new Measurement("control_round_trip_us", "G: a control request that does nothing (hello), one every 2 ms (median of 200)", "µs");
        var open = new Measurement("socket_open_us", "G: open and bind a socket, one every 2 ms (median of 200, kept open; the dataplane busy-polls its core)", "µs");
        var reopen = new Measurement("socket_reopen_us", "G: open and bind a socket, one every 2 ms, the one before closed first (median of 200; a connection keeps closed sockets' memory)", "µs");
        var openBurst = new Measurement("socket_open_burst_us", "G: the same, 200 back to back (past the daemon's memory made ahead)", "µs");
        var close = new Measurement("socket_close_us", "G: close one of them (the application's wait)", "µs");
        var openAdaptive = new Measurement("socket_open_adaptive_us", "G: open and bind, one every 2 ms, with the daemon's default dataplane, which sleeps when idle", "µs");
        var apply = new Measurement("policy10k_apply_ms", "G: a 10,000-rule policy, from the restore call until the dataplane runs it (no application busy)", "ms");
        var applyUnderLoad = new Measurement("policy10k_apply_under_load_ms", "G: the same while an application busy-polls 100 Mbit/s of 64-byte frames on the other core", "ms");
        var lost = new Measurement("policy_swap_lost_packets", "G: packets the application did not get while that policy replaced the empty one under 100 Mbit/s of 64-byte frames", "packets");
        for (int run = 0; run < runs; run++)
        {
            hello.Add(ControlScenarios.ControlRoundTripMicroseconds(200, pauseMilliseconds: 2));
            open.Add(ControlScenarios.SocketOpenAndCloseMicroseconds(200, pauseMilliseconds: 2).OpenP50);
            reopen.Add(ControlScenarios.SocketReopenMicroseconds(200, pauseMilliseconds: 2));
            var (burst, closed) = ControlScenarios.SocketOpenAndCloseMicroseconds(200);
            openBurst.Add(burst);
            close.Add(closed);
            openAdaptive.Add(ControlScenarios.SocketOpenAndCloseMicroseconds(200, busyPoll: false, pauseMilliseconds: 2).OpenP50);
            apply.Add(ControlScenarios.PolicyApplyMilliseconds(10_000));
            var (ms, missing) = ControlScenarios.PolicySwap(10_000, quick ? 150_000 : 300_000);
            applyUnderLoad.Add(ms);
            lost.Add(missing);
        }
        return [hello, open, reopen, openBurst, close, openAdaptive, apply, applyUnderLoad, lost];
    }

    private static Measurement[] Percentiles(string prefix, string description) =>
    [
        new($"{prefix}_p50_us", description + ", p50", "µs"),
        new($"{prefix}_p99_us", description + ", p99", "µs"),
        new($"{prefix}_p999_us", description + ", p99.9", "µs"),
    ];

    private static void Add(Measurement[] figures, (double P50, double P99, double P999) trips)
    {
        figures[0].Add(trips.P50);
        figures[1].Add(trips.P99);
        figures[2].Add(trips.P999);
    }
}
