using System.Diagnostics;
using System.Globalization;
using Norman.Soak;

namespace Norman.Bench;

/// <summary>
/// What a daemon costs when nothing happens, and how fast it answers when something does after a quiet spell: the
/// dataplane thread's share of a core over seconds of idleness (its CPU time from /proc/self/task/TID/schedstat), and
/// round trips application → dataplane → echoing peer → application that each start after 10 ms of silence, so the
/// dataplane has gone as far into its idle back-off as it goes. Adaptive (the default) and --busy-poll, in one run:
/// the figures issue 19's sleeping dataplane is to improve (idle CPU under 1% of a core, wake-up p50 under 20 µs).
/// </summary>
public static class IdleScenario
{
    public static IEnumerable<Measurement> Run(int runs, bool quick)
    {
        double idleSeconds = quick ? 1 : 3;
        int trips = quick ? 100 : 300;
        foreach (bool busyPoll in new[] { false, true })
        {
            string mode = busyPoll ? "busypoll" : "adaptive";
            var cpu = new Measurement($"idle_dataplane_cpu_percent_{mode}", $"an idle daemon's dataplane thread, share of a core ({mode})", "%");
            var p50 = new Measurement($"wake_rtt_p50_us_{mode}", $"round trip to the echoing peer after 10 ms of silence, p50 ({mode})", "µs");
            var p99 = new Measurement($"wake_rtt_p99_us_{mode}", $"the same, p99 ({mode})", "µs");
            for (int run = 0; run < runs; run++)
            {
                var (percent, roundTrips) = BenchDaemon.With((daemon, socket) =>
                {
                    Thread.Sleep(500); // the bind's breaths behind it
                    string thread = DataplaneThread();
                    long before = OnCpuNanoseconds(thread);
                    var clock = Stopwatch.StartNew();
                    Thread.Sleep(TimeSpan.FromSeconds(idleSeconds));
                    double share = (OnCpuNanoseconds(thread) - before) / (clock.Elapsed.TotalMilliseconds * 1e6) * 100;

                    const ushort echoPort = 7;
                    daemon.Peer!.EchoOnPort(echoPort);
                    var peer = daemon.Peer.Address;
                    var times = new List<double>(trips);
                    Span<byte> request = stackalloc byte[BenchDaemon.PayloadFor(64)];
                    for (int i = 0; i < trips; i++)
                    {
                        Thread.Sleep(10); // silence: the dataplane backs off as far as it goes
                        long start = Stopwatch.GetTimestamp();
                        while (!socket.TrySendTo(request, peer, echoPort))
                        {
                        }
                        while (Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(1))
                        {
                            if (socket.TryPeek(out _))
                            {
                                socket.Release();
                                times.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                                break;
                            }
                        }
                    }
                    return (share, new RoundTrips([.. times]));
                }, options => options.BusyPoll = busyPoll);
                cpu.Add(percent);
                p50.Add(roundTrips.Percentile(50));
                p99.Add(roundTrips.Percentile(99));
            }
            yield return cpu;
            yield return p50;
            yield return p99;
        }
    }

    /// <summary>The dataplane thread's directory under /proc/self/task ("norman-dataplane", which the kernel keeps to 15 characters).</summary>
    private static string DataplaneThread() =>
        Directory.GetDirectories("/proc/self/task").FirstOrDefault(task => File.ReadAllText(Path.Combine(task, "comm")).Trim() == "norman-dataplan")
        ?? throw new InvalidOperationException("no norman-dataplane thread in this process");

    private static long OnCpuNanoseconds(string task) =>
        long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0], CultureInfo.InvariantCulture);
}
