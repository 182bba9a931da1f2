using Norman.Soak;
using System.Diagnostics;
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Norman.Bench;

// norman-bench: runs every scenario several times and reports medians with min and max.
// Helper modes, run by the benchmark itself inside network namespaces:
//   kernel-recv PORT SECONDS | kernel-send DEVICE DEST PORT PAYLOAD SECONDS | norman-send DEVICE DEST PORT PAYLOAD SECONDS [afpacket|xdp [MAC]]
//   norman-recv DEVICE afpacket|xdp ADDRESS PORT SECONDS MAC | xdp-sink DEVICE (counts until stdin closes)
//   xsk-send DEVICE SRCMAC DSTMAC SRC DST PORT PAYLOAD SECONDS (an AF_XDP generator)
//   port-alone receive|send xdp|afpacket DEVICE OURMAC THEIRMAC SECONDS (one port's Receive or Transmit in a loop)
//   kernel-echo PORT SECONDS | kernel-ping DEST PORT PAYLOAD COUNT | raw-ring-consume RING LENGTH PACKETS
//   churn SOCKET APPLICATIONS (sockets closed and reopened until stdin closes)
//   daemon PORT ADDRESS SOCKET (until stdin closes) | tcp-sink PORT [SOCKET] | tcp-send HOST PORT BYTES [SOCKET]
// and, under callgrind: engine-once FILTER|- WARMUP PACKETS [conntrack]; egress-once CLASSES WARMUP PACKETS
// The soak, run by hand (not in CI): soak [SECONDS] (default 3600) — exit 0 when nothing was lost and nothing grew.
switch (args.FirstOrDefault())
{
    case "soak":
    {
        var report = Norman.Soak.Soak.Run(TimeSpan.FromSeconds(args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 3600), Console.Error.WriteLine);
        Console.WriteLine(report);
        return report.Passed ? 0 : 1;
    }
    case "kernel-recv":
        KernelUdp.Receive(int.Parse(args[1], CultureInfo.InvariantCulture), double.Parse(args[2], CultureInfo.InvariantCulture));
        return 0;
    case "kernel-send":
        KernelUdp.Send(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(args[2]), int.Parse(args[3], CultureInfo.InvariantCulture)),
            int.Parse(args[4], CultureInfo.InvariantCulture), double.Parse(args[5], CultureInfo.InvariantCulture));
        return 0;
    case "kernel-echo":
        KernelUdp.Echo(int.Parse(args[1], CultureInfo.InvariantCulture), double.Parse(args[2], CultureInfo.InvariantCulture));
        return 0;
    case "kernel-ping":
        KernelUdp.Ping(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(args[1]), int.Parse(args[2], CultureInfo.InvariantCulture)),
            int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture));
        return 0;
    case "raw-ring-consume":
        RawRingScenario.Consume(args[1], long.Parse(args[2], CultureInfo.InvariantCulture), long.Parse(args[3], CultureInfo.InvariantCulture));
        return 0;
    case "churn":
        IsolationScenario.Run(args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
        return 0;
    case "egress-once":
        QosSchedulerScenario.RunOnce(int.Parse(args[1], CultureInfo.InvariantCulture), long.Parse(args[2], CultureInfo.InvariantCulture),
            long.Parse(args[3], CultureInfo.InvariantCulture));
        return 0;
    case "engine-once":
        EngineOnlyScenario.RunOnce(args[1] == "-" ? null : args[1], long.Parse(args[2], CultureInfo.InvariantCulture),
            long.Parse(args[3], CultureInfo.InvariantCulture), conntrack: args.Length > 4 && args[4] == "conntrack");
        return 0;
    case "daemon":
        HttpScenarios.Daemon(args[1], args[2], args[3]);
        return 0;
    case "tcp-sink":
        HttpScenarios.Sink(int.Parse(args[1], CultureInfo.InvariantCulture), args.ElementAtOrDefault(2)).GetAwaiter().GetResult();
        return 0;
    case "tcp-send":
        HttpScenarios.Send(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(args[1]), int.Parse(args[2], CultureInfo.InvariantCulture)),
            long.Parse(args[3], CultureInfo.InvariantCulture), args.ElementAtOrDefault(4)).GetAwaiter().GetResult();
        return 0;
    case "norman-send":
        RealWireScenarios.NormanSend(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture),
            int.Parse(args[4], CultureInfo.InvariantCulture), double.Parse(args[5], CultureInfo.InvariantCulture),
            args.ElementAtOrDefault(6) ?? "afpacket", args.ElementAtOrDefault(7));
        return 0;
    case "norman-recv":
        XdpScenarios.NormanReceive(args[1], args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture),
            double.Parse(args[5], CultureInfo.InvariantCulture), args[6]);
        return 0;
    case "xdp-sink":
        XdpScenarios.Sink(args[1]);
        return 0;
    case "port-alone":
        XdpScenarios.PortAlone(args[1], args[2], args[3], args[4], args[5], double.Parse(args[6], CultureInfo.InvariantCulture));
        return 0;
    case "xsk-send":
        XdpScenarios.Generate(args[1], args[2], args[3], args[4], args[5], int.Parse(args[6], CultureInfo.InvariantCulture),
            int.Parse(args[7], CultureInfo.InvariantCulture), double.Parse(args[8], CultureInfo.InvariantCulture));
        return 0;
}

var quick = new Option<bool>("--quick") { Description = "Fewer packets and runs: a smoke run in well under two minutes." };
var runs = new Option<int>("--runs") { Description = "Runs of each scenario (the median is reported).", DefaultValueFactory = _ => 5 };
var json = new Option<string>("--json") { Description = "Where to write the flat JSON figures.", DefaultValueFactory = _ => "bench/results/latest.json" };
var markdown = new Option<string>("--markdown") { Description = "Where to write the markdown table.", DefaultValueFactory = _ => "bench/results/latest.md" };
var only = new Option<string[]>("--only") { Description = "Run only these groups of scenarios: ring, dataplane, policy, rules, capture, engine, ipv6, instructions, qos, set, kernel, xdp, ports, idle, latency, scale, control, isolation, tcp, http, programs. " +
    "Example: --only engine qos", AllowMultipleArgumentsPerToken = true };
var root = new RootCommand("Norman's benchmark: packets per second through the dataplane on the virtual wire.") { quick, runs, json, markdown, only };
root.SetAction(result =>
{
    bool isQuick = result.GetValue(quick);
    int runCount = isQuick ? 3 : Math.Max(1, result.GetValue(runs));
    long packets64 = isQuick ? 500_000 : 4_000_000;
    long packets1500 = isQuick ? 200_000 : 1_000_000;
    var figures = new List<Measurement>();
    long allocated = 0;
    var groups = result.GetValue(only) ?? [];
    bool Runs(string group) => groups.Length == 0 || groups.Contains(group);
    // Warm-up, not counted: the JIT's tiers and every one-time initialisation happen here.
    DataplaneScenarios.PeerToApplication(64, 200_000);
    DataplaneScenarios.ApplicationToPeer(64, 200_000);
    foreach (int frame in Runs("dataplane") ? new[] { 64, 1500 } : [])
    {
        long packets = frame == 64 ? packets64 : packets1500;
        var rx = new Measurement($"norman_nopolicy_mpps_{frame}", $"B: peer → dataplane → application, {frame}-byte frames, no policy", "Mpps");
        var rxNs = new Measurement($"norman_nopolicy_ns_per_packet_{frame}", $"B: dataplane core time per packet handled (delivered or dropped), peer → application, {frame}-byte frames", "ns");
        var rxApp = new Measurement($"norman_nopolicy_app_cpu_ns_{frame}", $"B: the application thread's CPU time per packet received (it busy-polls), {frame}-byte frames", "ns");
        var rxDrops = new Measurement($"norman_nopolicy_drops_{frame}", $"B: packets dropped (application slower than the wire), {frame}-byte frames", "packets");
        var tx = new Measurement($"norman_app_to_peer_mpps_{frame}", $"B: application → dataplane → peer, {frame}-byte frames", "Mpps");
        var txNs = new Measurement($"norman_app_to_peer_ns_per_packet_{frame}", $"B: dataplane core time per packet, application → peer, {frame}-byte frames", "ns");
        for (int run = 0; run < runCount; run++)
        {
            var received = DataplaneScenarios.PeerToApplication(frame, packets);
            rx.Add(received.Pps / 1e6);
            rxNs.Add(1e9 / received.ProcessedPps);
            rxApp.Add(received.ApplicationCpuNs);
            rxDrops.Add(received.Drops);
            var (txPps, _, txAllocated) = DataplaneScenarios.ApplicationToPeer(frame, packets);
            tx.Add(txPps / 1e6);
            txNs.Add(1e9 / txPps);
            allocated += received.AllocatedBytes + txAllocated;
            Console.Error.WriteLine($"run {run + 1}/{runCount}, {frame}-byte frames: peer→app {received.Pps / 1e6:F2} Mpps ({received.Drops} dropped), app→peer {txPps / 1e6:F2} Mpps; dataplane allocated {received.AllocatedBytes} + {txAllocated} bytes");
        }
        figures.AddRange([rx, rxNs, rxApp, rxDrops, tx, txNs]);
    }
    if (Runs("ring"))
    {
        figures.AddRange(ComparisonScenarios.RawRing(runCount, packets64, packets1500));
    }
    if (Runs("policy"))
    {
        figures.AddRange(ComparisonScenarios.EveryPolicy(runCount, packets64, bytes => allocated += bytes));
    }
    foreach (int rules in !Runs("rules") ? [] : isQuick ? new[] { 1000 } : new[] { 100, 1000, 10000 })
    {
        var withRules = new Measurement($"norman_rules{rules}_mpps_64", $"peer → application, 64-byte frames, {rules} ingress rules before the verdict", "Mpps");
        for (int run = 0; run < runCount; run++)
        {
            withRules.Add(DataplaneScenarios.PeerToApplication(64, packets64, rules).Pps / 1e6);
        }
        figures.Add(withRules);
    }
    if (Runs("capture"))
    {
        // Capture: a tap whose filter matches nothing, against the same run without one; and a tap of everything
        // that nobody reads, which must cost the data path nothing but the capture its drops.
        var noTap = new Measurement("norman_capture_baseline_mpps_64", "peer → application, 64-byte frames, no capture (baseline of the two below)", "Mpps");
        var idleTap = new Measurement("norman_capture_nomatch_mpps_64", "peer → application, 64-byte frames, a capture whose filter matches nothing (tcp port 9)", "Mpps");
        var slowTap = new Measurement("norman_capture_slowreader_mpps_64", "peer → application, 64-byte frames, a capture of everything that nobody reads", "Mpps");
        var aloneDrops = new Measurement("norman_capture_baseline_datapath_drops", "packets the data path lost with no capture (RX pipe full: the application slower than the dataplane)", "packets");
        var slowDrops = new Measurement("norman_capture_slowreader_datapath_drops", "packets the data path lost with the unread capture (RX pipe full included)", "packets");
        var captureDrops = new Measurement("norman_capture_slowreader_capture_drops", "packets the unread capture could not take (counted, as tcpdump's dropped by kernel)", "packets");
        // The tap's code is jitted only once a tap exists: warm it up (by time, for the JIT's tiers) as the common
        // warm-up did the rest, or the first tapped runs pay for unoptimised code.
        for (var warm = Stopwatch.StartNew(); warm.ElapsedMilliseconds < 1000;)
        {
            DataplaneScenarios.PeerToApplication(64, 200_000, captureFilter: "tcp port 9");
            DataplaneScenarios.PeerToApplication(64, 200_000, captureFilter: "");
        }
        for (int run = 0; run < runCount; run++)
        {
            // Each run in another order, so that none always goes first on a fresh or a tired machine.
            for (int step = 0; step < 3; step++)
            {
                switch ((run + step) % 3)
                {
                    case 0:
                        var alone = DataplaneScenarios.PeerToApplication(64, packets64);
                        noTap.Add(alone.Pps / 1e6);
                        aloneDrops.Add(alone.Drops);
                        break;
                    case 1:
                        idleTap.Add(DataplaneScenarios.PeerToApplication(64, packets64, captureFilter: "tcp port 9").Pps / 1e6);
                        break;
                    default:
                        var slow = DataplaneScenarios.PeerToApplication(64, packets64, captureFilter: "");
                        slowTap.Add(slow.Pps / 1e6);
                        slowDrops.Add(slow.Drops);
                        captureDrops.Add(slow.CaptureDrops);
                        break;
                }
            }
        }
        figures.AddRange([noTap, idleTap, slowTap, aloneDrops, slowDrops, captureDrops]);
    }
    if (Runs("engine"))
    {
        // The same comparison on one thread, with no scheduler between the dataplane and the reader.
        var engineAlone = new Measurement("engine_ns_per_packet_64", "engine alone, one thread: ns per 64-byte packet, peer → RX pipe", "ns");
        var engineTap = new Measurement("engine_capture_nomatch_ns_per_packet_64", "engine alone, one thread: ns per packet with a capture matching nothing", "ns");
        var tapCost = new Measurement("engine_capture_nomatch_cost_percent", "what a capture matching nothing adds to the engine's time per packet (median of 21 alternating trials' ratios)", "%");
        var methodFloor = new Measurement("engine_identical_engines_percent", "the same comparison between two identical engines: what the method reads as a cost when there is none", "%");
        for (int run = 0; run < runCount; run++)
        {
            var (alone, tapped, cost) = EngineOnlyScenario.CompareCapture(packets64, 21, "tcp port 9", tappedFirst: run % 2 == 1);
            engineAlone.Add(alone);
            engineTap.Add(tapped);
            tapCost.Add(cost);
            methodFloor.Add(EngineOnlyScenario.CompareCapture(packets64, 21, null, tappedFirst: run % 2 == 1).CostPercent);
        }
        figures.AddRange([engineAlone, engineTap, tapCost, methodFloor]);
    }
    if (Runs("ipv6"))
    {
        // Issue 21's target: IPv6 within 10% of IPv4, with no policy, with connection tracking on every packet, and with
        // every policy (scenario C's, a set of the flow's family).
        foreach (var (conntrack, everyPolicy) in new[] { (false, false), (true, false), (false, true) })
        {
            string what = everyPolicy ? "every policy (1,000 rules, a 10,000-address set, conntrack, 10 QoS classes, a capture matching nothing)"
                : conntrack ? "with connection tracking asked about every packet" : "no policy";
            string key = everyPolicy ? "everypolicy" : conntrack ? "conntrack" : "nopolicy";
            var v4 = new Measurement($"engine_ipv4_{key}_ns_per_packet", $"engine alone, one thread, {what}: ns per packet over IPv4 (64-byte frames' payload)", "ns");
            var v6 = new Measurement($"engine_ipv6_{key}_ns_per_packet", $"the same over IPv6, to a dual-stack socket on ::", "ns");
            var ratio = new Measurement($"engine_ipv6_over_ipv4_{key}", $"IPv6's time per packet over IPv4's, {what} (median of 21 alternating trials' ratios)", "×");
            for (int run = 0; run < runCount; run++)
            {
                var (v4Ns, v6Ns, v6OverV4) = EngineOnlyScenario.CompareFamilies(packets64, 21, conntrack, everyPolicy);
                v4.Add(v4Ns);
                v6.Add(v6Ns);
                ratio.Add(v6OverV4);
            }
            figures.AddRange([v4, v6, ratio]);
        }
    }
    // Instruction counts: exact where timing on a shared machine is not, but two minutes of valgrind, so
    // not part of --quick unless asked for by name.
    if ((isQuick ? groups.Contains("instructions") : Runs("instructions")) && InstructionCounts.WhyNot() is { } noCounts)
    {
        Console.Error.WriteLine($"skipping the instruction counts: {noCounts}");
    }
    else if (isQuick ? groups.Contains("instructions") : Runs("instructions"))
    {
        // Counts repeat to within a few instructions in a million packets: one run each is the figure.
        const long counted = 100_000;
        var (alone, profile) = InstructionCounts.PerPacket(null, counted);
        double tapped = InstructionCounts.PerPacket("tcp port 9", counted).Total;
        // The profile: where the engine's instructions per packet go, method by method (12 largest).
        Console.Error.WriteLine("instructions per packet by method, engine alone:");
        foreach (var (method, perPacket) in profile.OrderByDescending(m => m.Value).Take(12))
        {
            Console.Error.WriteLine($"  {perPacket,8:F1}  {method}");
        }
        var aloneFigure = new Measurement("engine_instructions_per_packet_64", "engine alone: instructions per 64-byte packet, peer → RX pipe (callgrind, no tiers)", "instructions");
        var tappedFigure = new Measurement("engine_capture_nomatch_instructions_per_packet_64", "the same with a capture matching nothing (tcp port 9)", "instructions");
        var cost = new Measurement("engine_capture_nomatch_instructions_percent", "what a capture matching nothing adds to the engine's instructions per packet", "%");
        var tracked = new Measurement("engine_conntrack_instructions_per_packet_64", "the same with connection tracking asked about every packet (a `ct state invalid drop` rule)", "instructions");
        var (withConntrack, conntrackProfile) = InstructionCounts.PerPacket(null, counted, conntrack: true);
        tracked.Add(withConntrack);
        Console.Error.WriteLine("instructions per packet by method, with connection tracking asked about every packet:");
        foreach (var (method, perPacket) in conntrackProfile.OrderByDescending(m => m.Value).Take(12))
        {
            Console.Error.WriteLine($"  {perPacket,8:F1}  {method}");
        }
        aloneFigure.Add(alone);
        tappedFigure.Add(tapped);
        cost.Add((tapped / alone - 1) * 100);
        Console.Error.WriteLine($"instructions per packet: {alone:F1} alone, {tapped:F1} with a capture matching nothing ({(tapped / alone - 1) * 100:+0.0;-0.0}%)");
        figures.AddRange([aloneFigure, tappedFigure, cost, tracked]);
        // The way out: full TX pipes through the scheduler to the wire, with the default class alone and with 10.
        foreach (int classes in new[] { 0, 10 })
        {
            var (egress, egressProfile) = InstructionCounts.EgressPerPacket(classes, counted);
            var egressFigure = new Measurement(classes == 0 ? "egress_instructions_per_packet_64" : $"egress_qos{classes}_instructions_per_packet_64",
                $"engine alone: instructions per 64-byte packet, {QosSchedulerScenario.Sockets} full TX pipes → wire, " +
                (classes == 0 ? "the default class alone" : $"{classes} QoS classes") + " (callgrind, no tiers)", "instructions");
            egressFigure.Add(egress);
            figures.Add(egressFigure);
            Console.Error.WriteLine($"instructions per packet by method, egress with {(classes == 0 ? "the default class" : $"{classes} classes")}:");
            foreach (var (method, perPacket) in egressProfile.OrderByDescending(m => m.Value).Take(8))
            {
                Console.Error.WriteLine($"  {perPacket,8:F1}  {method}");
            }
        }
    }
    if (Runs("qos"))
    {
        // QoS: the cost of choosing the next TX pipe, with no class (the default class alone) and with 1, 10 and 1,000 classes.
        var schedulers = new[] { 0, 1, 10, 1000 }.Select(classes => (Classes: classes, Figure: new Measurement(
            classes == 0 ? "qos_none_ns_per_packet_64" : $"qos_classes{classes}_ns_per_packet_64",
            $"engine alone, one thread: ns per 64-byte packet from {QosSchedulerScenario.Sockets} full TX pipes to the wire, " +
            (classes == 0 ? "no QoS class (round robin in the default class)" : $"{classes} QoS classes"), "ns"))).ToList();
        for (int run = 0; run < runCount; run++)
        {
            foreach (var (classes, figure) in schedulers)
            {
                figure.Add(QosSchedulerScenario.NanosecondsPerPacket(packets64, classes));
            }
        }
        figures.AddRange(schedulers.Select(s => s.Figure));
    }
    if (Runs("set"))
    {
        var set = new Measurement("norman_set10k_mpps_64", "peer → application, 64-byte frames, a rule looking the source up in a 10,000-address set", "Mpps");
        for (int run = 0; run < runCount; run++)
        {
            set.Add(DataplaneScenarios.PeerToApplication(64, packets64, setSize: 10_000).Pps / 1e6);
        }
        figures.AddRange([set]);
    }
    if (Runs("kernel") && RealWireScenarios.WhyNot() is { } why)
    {
        Console.Error.WriteLine($"skipping the veth scenarios (kernel baseline, afpacket): {why}");
    }
    else if (Runs("kernel"))
    {
        double wireSeconds = isQuick ? 1 : 2;
        var kernel = new Measurement("kernel_udp_pps_0rules", "Linux UDP, sendmmsg → veth → recvmmsg between two namespaces, 64-byte frames, no rules", "pps");
        var afpacket = new Measurement("norman_afpacket_tx_pps_64", "Norman application → dataplane → AF_PACKET → veth → Linux recvmmsg, 64-byte frames", "pps");
        for (int run = 0; run < runCount; run++)
        {
            kernel.Add(RealWireScenarios.Run(norman: false, BenchDaemon.PayloadFor(64), wireSeconds));
            afpacket.Add(RealWireScenarios.Run(norman: true, BenchDaemon.PayloadFor(64), wireSeconds));
        }
        figures.AddRange([kernel, afpacket]);
        foreach (var firewall in new[] { RealWireScenarios.KernelFirewall.Iptables, RealWireScenarios.KernelFirewall.Nftables })
        {
            foreach (int rules in isQuick ? new[] { 1000 } : new[] { 1000, 10000 })
            {
                string name = firewall == RealWireScenarios.KernelFirewall.Iptables ? "iptables" : "nft";
                var withRules = new Measurement($"kernel_udp_pps_{rules / 1000}k_{name}",
                    $"Linux UDP over veth, {rules} {name} rules before the verdict, 64-byte frames", "pps");
                for (int run = 0; run < runCount; run++)
                {
                    withRules.Add(RealWireScenarios.Run(norman: false, BenchDaemon.PayloadFor(64), wireSeconds, rules, firewall));
                }
                figures.Add(withRules);
            }
        }
    }
    if (Runs("xdp") && RealWireScenarios.WhyNot() is { } noXdp)
    {
        Console.Error.WriteLine($"skipping the xdp scenarios: {noXdp}");
    }
    else if (Runs("xdp"))
    {
        figures.AddRange(XdpScenarios.Run(runCount, isQuick));
        if (HttpScenarios.WhyNot() is { } noXdpHttp)
        {
            Console.Error.WriteLine($"skipping HTTP and TCP over the XDP port: {noXdpHttp}");
        }
        else
        {
            figures.AddRange(HttpScenarios.Bulk(runCount, isQuick, port: "xdp"));
            figures.AddRange(HttpScenarios.Requests(runCount, isQuick, port: "xdp"));
        }
    }
    if (Runs("idle"))
    {
        figures.AddRange(IdleScenario.Run(runCount, isQuick));
    }
    if (Runs("ports") && RealWireScenarios.WhyNot() is { } noPorts)
    {
        Console.Error.WriteLine($"skipping the ports' own costs: {noPorts}");
    }
    else if (Runs("ports"))
    {
        figures.AddRange(XdpScenarios.PortCost(runCount, isQuick));
    }
    if (Runs("latency"))
    {
        figures.AddRange(ComparisonScenarios.Latency(runCount, isQuick ? 5_000 : 50_000));
    }
    if (Runs("scale"))
    {
        figures.AddRange(ComparisonScenarios.Scale(runCount, packets64, isQuick));
    }
    if (Runs("control"))
    {
        figures.AddRange(ComparisonScenarios.Control(runCount, isQuick));
    }
    if (Runs("tcp"))
    {
        figures.AddRange(TcpScenarios.Bulk(runCount, isQuick));
        figures.AddRange(TcpScenarios.LossyLongPath(runCount, isQuick));
        figures.AddRange(TcpScenarios.ConnectRate(runCount, isQuick));
        if (RealWireScenarios.WhyNot() is { } noVeth)
        {
            Console.Error.WriteLine($"skipping TCP to the kernel over veth: {noVeth}");
        }
        else
        {
            figures.AddRange(HttpScenarios.Bulk(runCount, isQuick));
        }
    }
    if (Runs("http") && HttpScenarios.WhyNot() is { } noWrk)
    {
        Console.Error.WriteLine($"skipping wrk against ASP.NET Core: {noWrk}");
    }
    else if (Runs("http"))
    {
        figures.AddRange(HttpScenarios.Requests(runCount, isQuick));
    }
    if (Runs("programs") && HttpScenarios.WhyNotPrograms() is { } noPrograms)
    {
        Console.Error.WriteLine($"skipping unmodified programs under norman run: {noPrograms}");
    }
    else if (Runs("programs"))
    {
        figures.AddRange(HttpScenarios.Programs(runCount, isQuick));
    }
    if (Runs("isolation"))
    {
        figures.AddRange(IsolationScenario.Churn(runCount, packets64, 1000));
    }
    var alloc = new Measurement("hot_loop_alloc_bytes", "bytes allocated by the dataplane thread over every run", "bytes");
    alloc.Add(allocated);
    figures.Add(alloc);
    Write(figures, result.GetValue(json)!, result.GetValue(markdown)!, isQuick, runCount);
    return 0;
});
return root.Parse(args).Invoke();

static void Write(List<Measurement> figures, string jsonPath, string markdownPath, bool quick, int runs)
{
    var flat = new Dictionary<string, double>();
    foreach (var figure in figures)
    {
        flat[figure.Key] = Math.Round(figure.Median, 4);
        flat[figure.Key + "_min"] = Math.Round(figure.Min, 4);
        flat[figure.Key + "_max"] = Math.Round(figure.Max, 4);
    }
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(jsonPath))!);
    File.WriteAllText(jsonPath, JsonSerializer.Serialize(flat, new JsonSerializerOptions { WriteIndented = true }));

    var table = new StringBuilder();
    table.AppendLine(CultureInfo.InvariantCulture, $"Norman benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, {(quick ? "--quick, " : "")}{runs} runs (median [min–max])");
    table.AppendLine();
    table.AppendLine("| figure | median | min | max | unit | key |");
    table.AppendLine("|---|---:|---:|---:|---|---|");
    foreach (var f in figures)
    {
        table.AppendLine(CultureInfo.InvariantCulture, $"| {f.Description} | {f.Median:0.###} | {f.Min:0.###} | {f.Max:0.###} | {f.Unit} | `{f.Key}` |");
    }
    table.AppendLine();
    table.AppendLine("Targets (issues 7 and 8), each a ratio of two medians of this run:");
    table.AppendLine();
    table.Append(Targets.Table(figures));
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(markdownPath))!);
    File.WriteAllText(markdownPath, table.ToString());
    Console.Write(table.ToString());
    Console.WriteLine();
    Console.WriteLine($"written: {jsonPath}, {markdownPath}");
}
