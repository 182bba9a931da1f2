using System.Diagnostics;
using System.Globalization;
using System.Text;
using Norman.Daemon;

namespace Norman.Cli.Commands;

/// <summary>
/// The demo's first story: a client on the peer host keeps the database busy; Bob's bulk sender, over eight sockets,
/// saturates the wire, and round robin between pipes leaves the database a ninth of it, so its answers queue and
/// its clients wait; one `norman qos` command puts the database first. Each phase prints both applications'
/// throughput and the database's round trip, and the whole is drawn into an SVG chart.
/// </summary>
public static class DemoQosStory
{
    private const ushort DatabasePort = 6379;
    private const ushort SinkPort = 9000;
    private const int BobStreams = 8;
    /// <summary>Requests a second from the peer's client; each answer carries a 1,200-byte value (~200 Mbit/s).</summary>
    private const int RequestsPerSecond = 20_000;
    private const int ValueBytes = 1200;

    public static async Task RunAsync(NormanDaemon daemon, string socketPath, List<Process> started, double phaseSeconds)
    {
        var peer = daemon.Peer!;
        peer.SinkOnPort(SinkPort);
        peer.SendUdp(40000, DatabasePort, Encoding.ASCII.GetBytes("SET big " + new string('v', ValueBytes)));
        _ = peer.TakeDatagram(TimeSpan.FromSeconds(5)) ?? throw new TimeoutException("The database did not answer its first SET within 5 s.");

        DemoCommand.Step($"A client on the peer host asks the database for a {ValueBytes}-byte value {RequestsPerSecond:N0} times a second:",
            "(peer 198.18.0.2) #N GET big, each answer timed on the wire");
        peer.StartRequests(DatabasePort, "GET big", RequestsPerSecond);
        // A second unmeasured first: the database's code is compiled and tiered up by the JIT while it serves.
        await Task.Delay(1000);
        var chart = new QosChart();
        var clock = Stopwatch.StartNew();
        var results = new List<(string Phase, Phase Result)>();
        results.Add(("quiet", await MeasureAsync(daemon, "quiet", phaseSeconds, chart, clock)));

        DemoCommand.Step($"Bob's app starts sending bulk traffic to the peer host, over {BobStreams} sockets:",
            $"NORMAN_SOCKET={socketPath} bobapp 198.18.0.2 {SinkPort} --streams {BobStreams}");
        var bob = DemoCommand.Launch("bobapp", ["198.18.0.2", SinkPort.ToString(CultureInfo.InvariantCulture), "--streams",
            BobStreams.ToString(CultureInfo.InvariantCulture), "--seconds", (2 * phaseSeconds + 4).ToString(CultureInfo.InvariantCulture)], socketPath, started);
        Console.WriteLine(await DemoCommand.FirstLineAsync(bob));
        results.Add(("Bob sending", await MeasureAsync(daemon, "Bob sending", phaseSeconds, chart, clock)));

        DemoCommand.Step("Alice gives the database priority over everything else, with one command:",
            "norman qos add database band 0 match app kvdb");
        Console.Write(await DemoCommand.RunSelfAsync(["qos", "--socket", socketPath, "add", "database", "band", "0", "match", "app", "kvdb"]));
        results.Add(("database first", await MeasureAsync(daemon, "database first", phaseSeconds, chart, clock)));
        peer.StartRequests(DatabasePort, "", 0);

        DemoCommand.Step("Before and after:", "");
        Console.WriteLine($"  {"phase",-16} {"database",12} {"Bob's app",12} {"answered",10} {"round trip p50",15} {"p99",10}");
        foreach (var (name, phase) in results)
        {
            Console.WriteLine($"  {name,-16} {phase.DatabaseMbps,7:F0} Mbit/s {phase.BobMbps,5:F0} Mbit/s {phase.AnsweredPercent,9:F1}% {QosChart.Duration(phase.P50),15} {QosChart.Duration(phase.P99),10}");
        }
        string svg = Path.Combine(Path.GetTempPath(), $"norman-demo-qos-{Environment.ProcessId}.svg");
        chart.Write(svg, daemon.Engine.Port is Norman.Daemon.Dataplane.Ports.VirtualPort port ? port.LineRateBitsPerSecond / 1e6 : 1000);
        Console.WriteLine($"  the chart: {svg}   (open it in a browser, e.g. xdg-open {svg})");
        DemoCommand.Step("…and the classes as the administrator sees them:", "norman qos show");
        Console.Write(await DemoCommand.RunSelfAsync(["qos", "--socket", socketPath, "show"]));
    }

    private sealed record Phase(double DatabaseMbps, double BobMbps, double AnsweredPercent, double P50, double P99);

    /// <summary>One phase: throughput sampled every 100 ms for the chart, round trips of every answered request.</summary>
    private static async Task<Phase> MeasureAsync(NormanDaemon daemon, string name, double seconds, QosChart chart, Stopwatch clock)
    {
        var peer = daemon.Peer!;
        long sentBefore = peer.TakeRoundTrips().Sent; // what was answered before the phase belongs to the one before
        double start = clock.Elapsed.TotalSeconds;
        var (database0, bob0) = SentBytes(daemon);
        var (database, bob) = (database0, bob0);
        double last = start;
        while (clock.Elapsed.TotalSeconds - start < seconds)
        {
            await Task.Delay(100);
            var (databaseNow, bobNow) = SentBytes(daemon);
            double now = clock.Elapsed.TotalSeconds;
            chart.AddPoint(now, (databaseNow - database) * 8 / 1e6 / (now - last), (bobNow - bob) * 8 / 1e6 / (now - last));
            (database, bob, last) = (databaseNow, bobNow, now);
        }
        double elapsed = clock.Elapsed.TotalSeconds - start;
        var (samples, requests, sent) = peer.TakeRoundTrips();
        // Answered in the phase: of the requests sent in it, those whose answer came back before it ended.
        long answered = requests.Count(r => r >= sentBefore && r < sent);
        Array.Sort(samples);
        double P(double q) => samples.Length == 0 ? double.NaN : samples[(int)Math.Min(samples.Length - 1, q * samples.Length)];
        var phase = new Phase((database - database0) * 8 / 1e6 / elapsed, (bob - bob0) * 8 / 1e6 / elapsed,
            100.0 * answered / Math.Max(1, sent - sentBefore), P(0.5), P(0.99));
        chart.AddPhase(start, name, phase.P50, phase.P99);
        Console.WriteLine($"  {name}: database {phase.DatabaseMbps:F0} Mbit/s, Bob's app {phase.BobMbps:F0} Mbit/s; " +
            $"{phase.AnsweredPercent:F1}% of requests answered, round trip p50 {QosChart.Duration(phase.P50)}, p99 {QosChart.Duration(phase.P99)}");
        return phase;
    }

    /// <summary>Bytes the dataplane sent for the database's sockets and for Bob's.</summary>
    private static (long Database, long Bob) SentBytes(NormanDaemon daemon)
    {
        long database = 0, bob = 0;
        foreach (var socket in daemon.Control.Sockets.Snapshot())
        {
            long bytes = Volatile.Read(ref socket.Pipe.Counters.TxBytes);
            if (socket.Owner.ProcessName == "kvdb")
            {
                database += bytes;
            }
            else if (socket.Owner.ProcessName == "bobapp")
            {
                bob += bytes;
            }
        }
        return (database, bob);
    }
}
