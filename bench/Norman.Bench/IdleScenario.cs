using System.Diagnostics;
using System.Globalization;
using Norman.Soak;

namespace Norman.Bench;

/// <summary>
/// What a daemon costs when nothing happens, how fast it answers when something does after a quiet spell, and what
/// sleeping costs under load. Idle: the dataplane thread's share of a core over seconds of idleness (its CPU time from
/// /proc/self/task/TID/schedstat). Waking: round trips application → dataplane → echoing peer → application that
/// each start after 10 ms of silence, so the dataplane is asleep; beside them, in the same run, the machine's floor
/// (one thread waking another from epoll on an eventfd after the same silence: what any sleeping design pays) and the
/// kernel's own UDP echo over loopback after the same silence. Load: a flood each way, adaptive against --busy-poll.
/// Issue 19's targets: idle CPU under 1% of a core, wake-up p50 under 20 µs, throughput within 5% of busy-polling.
/// </summary>
public static class IdleScenario
{
    public static IEnumerable<Measurement> Run(int runs, bool quick)
    {
        double idleSeconds = quick ? 1 : 3;
        int trips = quick ? 100 : 300;
        foreach (var (busyPoll, idleSockets) in new[] { (false, 0), (true, 0), (false, 1000) })
        {
            // The last: 1,000 idle sockets bound beside the one that sends, so that arming and withdrawing wake-ups
            // before and after each sleep shows what it costs per socket.
            string mode = (busyPoll ? "busypoll" : "adaptive") + (idleSockets > 0 ? $"_beside_{idleSockets}" : "");
            var cpu = new Measurement($"idle_dataplane_cpu_percent_{mode}", $"an idle daemon's dataplane thread, share of a core ({mode})", "%");
            var p50 = new Measurement($"wake_rtt_p50_us_{mode}", $"round trip to the echoing peer after 10 ms of silence, p50 ({mode})", "µs");
            var p99 = new Measurement($"wake_rtt_p99_us_{mode}", $"the same, p99 ({mode})", "µs");
            var woken = new Measurement($"dataplane_wake_p50_us_{mode}",
                $"of that round trip, the sleeping dataplane woken by the application's doorbell: from the send to its thread running, p50 ({mode})", "µs");
            for (int run = 0; run < runs; run++)
            {
                var (percent, roundTrips, wakes) = BenchDaemon.With((daemon, socket) =>
                {
                    using var beside = SocketScaleScenario.IdleSockets(daemon, idleSockets);
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
                    var wakeTimes = new List<double>(trips);
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
                                if (daemon.Engine.WokenAt is var wokeAt && wokeAt > start)
                                {
                                    wakeTimes.Add((wokeAt - start) * 1e6 / Stopwatch.Frequency);
                                }
                                break;
                            }
                        }
                    }
                    return (share, new RoundTrips([.. times]), wakeTimes);
                }, options => options.BusyPoll = busyPoll);
                cpu.Add(percent);
                p50.Add(roundTrips.Percentile(50));
                p99.Add(roundTrips.Percentile(99));
                if (wakes.Count > 0)
                {
                    woken.Add(new RoundTrips([.. wakes]).Percentile(50));
                }
            }
            yield return cpu;
            yield return p50;
            yield return p99;
            if (!busyPoll)
            {
                yield return woken; // a busy-polling dataplane never sleeps
            }
        }
        var floor = new Measurement("wake_floor_p50_us", "this machine's floor: an eventfd wakes a thread asleep in poll after 10 ms of silence, p50", "µs");
        var kernel = new Measurement("kernel_wake_rtt_p50_us", "the kernel's UDP echo over loopback after 10 ms of silence, p50 (the echoing thread asleep in recvfrom)", "µs");
        for (int run = 0; run < runs; run++)
        {
            floor.Add(WakeFloor(trips).Percentile(50));
            kernel.Add(KernelEchoAfterSilence(trips).Percentile(50));
        }
        yield return floor;
        yield return kernel;

        long packets = quick ? 2_000_000 : 5_000_000;
        foreach (var (direction, flood) in new (string, Func<bool, double>)[]
        {
            ("app_to_peer", busyPoll => DataplaneScenarios.ApplicationToPeer(64, packets, busyPoll).Pps),
            ("peer_to_app", busyPoll => DataplaneScenarios.PeerToApplication(64, packets, busyPoll: busyPoll).Pps),
        })
        {
            var ratio = new Measurement($"loaded_{direction}_adaptive_vs_busypoll", $"64-byte flood {direction.Replace('_', ' ')}: adaptive over --busy-poll, each pair in one run", "×");
            for (int run = 0; run < runs; run++)
            {
                double busy = flood(true);
                ratio.Add(flood(false) / busy);
            }
            yield return ratio;
        }
    }

    /// <summary>One thread sleeps in poll on an eventfd; another signals it 10 ms later and spins until it is awake.</summary>
    private static RoundTrips WakeFloor(int trips)
    {
        using var eventFd = Norman.Core.Shm.EventFd.Create();
        long wokeAt = 0;
        bool stop = false;
        var sleeper = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                if (eventFd.Wait(100))
                {
                    Volatile.Write(ref wokeAt, Stopwatch.GetTimestamp());
                }
            }
        });
        sleeper.Start();
        var times = new double[trips];
        for (int i = 0; i < trips; i++)
        {
            Thread.Sleep(10);
            Volatile.Write(ref wokeAt, 0);
            long start = Stopwatch.GetTimestamp();
            eventFd.Signal();
            while (Volatile.Read(ref wokeAt) == 0)
            {
            }
            times[i] = (Volatile.Read(ref wokeAt) - start) * 1e6 / Stopwatch.Frequency;
        }
        Volatile.Write(ref stop, true);
        sleeper.Join();
        return new RoundTrips(times);
    }

    /// <summary>
    /// A kernel UDP echo on loopback, its thread blocked in recvfrom; the client sends 10 ms after the last answer and
    /// spins on a non-blocking receive, as the Norman application spins on its pipe.
    /// </summary>
    private static RoundTrips KernelEchoAfterSilence(int trips)
    {
        using var server = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        server.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        server.ReceiveTimeout = 200;
        bool stop = false;
        var echo = new Thread(() =>
        {
            var buffer = new byte[2048];
            System.Net.EndPoint from = new System.Net.IPEndPoint(System.Net.IPAddress.Any, 0);
            while (!Volatile.Read(ref stop))
            {
                try
                {
                    int length = server.ReceiveFrom(buffer, ref from);
                    server.SendTo(buffer.AsSpan(0, length), from);
                }
                catch (System.Net.Sockets.SocketException)
                {
                }
            }
        });
        echo.Start();
        using var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        client.Connect(server.LocalEndPoint!);
        client.Blocking = false;
        var request = new byte[BenchDaemon.PayloadFor(64)];
        var answer = new byte[2048];
        var times = new List<double>(trips);
        for (int i = 0; i < trips; i++)
        {
            Thread.Sleep(10);
            long start = Stopwatch.GetTimestamp();
            client.Send(request);
            while (Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(1))
            {
                if (client.Receive(answer, System.Net.Sockets.SocketFlags.None, out var error) > 0 && error == System.Net.Sockets.SocketError.Success)
                {
                    times.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                    break;
                }
            }
        }
        Volatile.Write(ref stop, true);
        echo.Join();
        return new RoundTrips([.. times]);
    }

    /// <summary>The dataplane thread's directory under /proc/self/task ("norman-dataplane", which the kernel keeps to 15 characters).</summary>
    private static string DataplaneThread() =>
        Directory.GetDirectories("/proc/self/task").FirstOrDefault(task => File.ReadAllText(Path.Combine(task, "comm")).Trim() == "norman-dataplan")
        ?? throw new InvalidOperationException("no norman-dataplane thread in this process");

    private static long OnCpuNanoseconds(string task) =>
        long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0], CultureInfo.InvariantCulture);
}
