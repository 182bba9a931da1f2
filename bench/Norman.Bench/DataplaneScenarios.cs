using Norman.Soak;
using System.Diagnostics;
using System.Numerics;
using Norman.Client;
using Norman.Core.Packets;
using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Bench;

/// <summary>
/// Scenario B of the benchmark: packets through a real daemon (dataplane thread, memfd pipes, control socket) on a
/// virtual wire with no line rate, between the simulated peer and an application thread that busy-polls through
/// NormanUdpSocket's zero-copy calls. The dataplane thread spins on its own core, so wall time per packet is the
/// dataplane core's time per packet.
/// </summary>
public static class DataplaneScenarios
{
    /// <summary>What one peer → application run measured.</summary>
    /// <param name="Pps">Packets a second the application received.</param>
    /// <param name="Drops">Packets the dataplane dropped (the application slower than the wire: its RX pipe full).</param>
    /// <param name="AllocatedBytes">Bytes the dataplane thread allocated meanwhile.</param>
    /// <param name="ProcessedPps">Packets a second the dataplane handled, delivered or dropped.</param>
    /// <param name="ApplicationCpuNs">The application thread's CPU time per packet it received (it busy-polls).</param>
    /// <param name="CaptureDrops">Packets the run's capture ring had no room for.</param>
    /// <param name="TrackedFlows">Flows connection tracking held at the end.</param>
    /// <param name="ConntrackBytesPerFlow">Connection tracking's memory per flow it can hold (all taken at start).</param>
    public sealed record PeerRun(double Pps, long Drops, long AllocatedBytes, double ProcessedPps, double ApplicationCpuNs, long CaptureDrops,
        int TrackedFlows, double ConntrackBytesPerFlow);

    /// <summary><paramref name="rules"/> ingress rules that this flow does not match come before the verdict (the policy: accept).</summary>
    /// <remarks>
    /// With <paramref name="captureFilter"/>, a capture tap with that libpcap filter is in the path; nobody reads its
    /// ring (the slowest reader there is), so once full it can only count drops.
    /// </remarks>
    /// <remarks>
    /// <paramref name="conntrack"/> adds a rule that asks connection tracking about every packet (`ct state invalid
    /// drop`, which this flow never is); <paramref name="qosClasses"/> sets up that many QoS classes, matched by port.
    /// </remarks>
    /// <remarks><paramref name="beside"/> starts something that runs beside the flow, stopped when it is disposed.</remarks>
    public static PeerRun PeerToApplication(int frameSize, long packets, int rules = 0, int setSize = 0,
        string? captureFilter = null, bool conntrack = false, int qosClasses = 0, int flows = 1, Func<NormanDaemon, IDisposable>? beside = null,
        bool busyPoll = true)
    {
        return BenchDaemon.With((daemon, socket) =>
        {
            Norman.Daemon.Capture.CaptureTap? tap = null;
            if (captureFilter is not null)
            {
                tap = new Norman.Daemon.Capture.CaptureTap(1, captureFilter, 96, inbound: true, outbound: true, onlyUid: -1, onlyAppId: -1);
                var add = new Norman.Daemon.Dataplane.AddTapCommand(tap);
                daemon.Engine.Post(add);
                add.Applied.GetAwaiter().GetResult();
            }
            if (setSize > 0)
            {
                // A set of addresses the peer is not among, and one rule that looks the source up in it.
                daemon.Policy.AddSet("blocked", "ipv4_addr", Enumerable.Range(0, setSize).Select(i => $"203.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}").ToList());
                daemon.Policy.Add(Norman.Daemon.Policy.Chain.Ingress, ["ip", "saddr", "@blocked", "drop"]);
            }
            if (rules > 0)
            {
                daemon.Policy.Restore(BenchDaemon.RulesNotMatching(rules), "bench");
            }
            if (conntrack)
            {
                daemon.Policy.Add(Norman.Daemon.Policy.Chain.Ingress, ["ct", "state", "invalid", "drop"]);
            }
            if (qosClasses > 0)
            {
                daemon.Qos.Restore(Enumerable.Range(0, qosClasses).SelectMany(c => new[]
                {
                    (new List<string> { "class", $"c{c}", "band", $"{c % 3}", "weight", $"{1 + c % 7}" }, "bench"),
                    (new List<string> { "match", $"c{c}", "udp", "sport", $"{5000 + c}" }, "bench"),
                }).ToList());
            }
            var peer = daemon.Peer!;
            using var besideFlow = beside?.Invoke(daemon);
            long received = 0;
            long allocatedBefore = daemon.DataplaneAllocatedBytes;
            long cpuBefore = ThreadCpuClock.Nanoseconds();
            var clock = Stopwatch.StartNew();
            peer.StartFlood(40000, socket.LocalPort, BenchDaemon.PayloadFor(frameSize), packets, flows);
            var deadline = TimeSpan.FromSeconds(60);
            while (clock.Elapsed < deadline)
            {
                int batch = 0;
                while (batch < 64 && socket.TryPeek(out _))
                {
                    socket.Release();
                    batch++;
                }
                received += batch;
                if (received + daemon.Engine.Counters.TotalDrops() >= packets)
                {
                    break;
                }
            }
            double seconds = clock.Elapsed.TotalSeconds;
            var conntrackTable = daemon.Engine.Conntrack;
            return new PeerRun(received / seconds, daemon.Engine.Counters.TotalDrops(), daemon.DataplaneAllocatedBytes - allocatedBefore,
                daemon.Engine.Counters.PortRxPackets / seconds, (double)(ThreadCpuClock.Nanoseconds() - cpuBefore) / Math.Max(1, received),
                tap?.Dropped ?? 0, conntrackTable.Count, (double)conntrackTable.BytesAllocated / conntrackTable.Capacity);
        }, options =>
        {
            options.MaxTrackedFlows = Math.Max(options.MaxTrackedFlows, (int)BitOperations.RoundUpToPowerOf2((uint)flows));
            options.BusyPoll = busyPoll;
        });
    }

    /// <summary>
    /// Scenario E: <paramref name="count"/> requests, one at a time, from the application to the peer's echo port and
    /// back (application → dataplane → wire → peer → wire → dataplane → application), the application busy-polling
    /// for each answer as a kernel-bypass application does.
    /// </summary>
    public static (double P50, double P99, double P999) LibnormanRoundTrips(int payload, int count)
    {
        string program = NativeProgram.Compile("bench/native/udp_pingpong.c");
        return BenchDaemon.With((daemon, _) =>
        {
            const ushort echoPort = 7;
            daemon.Peer!.EchoOnPort(echoPort);
            var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in new[] { daemon.Peer.Address.ToString(), echoPort.ToString(), payload.ToString(), count.ToString() })
            {
                start.ArgumentList.Add(argument);
            }
            start.Environment["NORMAN_SOCKET"] = daemon.SocketPath;
            using var process = Process.Start(start)!;
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            var figures = output.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return process.ExitCode == 0 && figures.Length == 3
                ? (double.Parse(figures[0]), double.Parse(figures[1]), double.Parse(figures[2]))
                : throw new InvalidOperationException($"{program} failed: {output}{process.StandardError.ReadToEnd()}");
        });
    }

    public static RoundTrips NormanRoundTrips(int payload, int count)
    {
        return BenchDaemon.With((daemon, socket) =>
        {
            const ushort echoPort = 7;
            daemon.Peer!.EchoOnPort(echoPort);
            var peer = daemon.Peer.Address;
            var times = new List<double>(count);
            int warmUp = count / 10;
            Span<byte> request = stackalloc byte[payload];
            var limit = Stopwatch.StartNew();
            for (int i = 0; i < count + warmUp && limit.Elapsed < TimeSpan.FromSeconds(60); i++)
            {
                long start = Stopwatch.GetTimestamp();
                while (!socket.TrySendTo(request, peer, echoPort))
                {
                }
                bool answered = false;
                while (!answered && Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(1))
                {
                    if (socket.TryPeek(out _))
                    {
                        socket.Release();
                        answered = true;
                    }
                }
                if (answered && i >= warmUp)
                {
                    times.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
                }
            }
            return new RoundTrips([.. times]);
        });
    }

    public static (double Pps, long Drops, long AllocatedBytes) ApplicationToPeer(int frameSize, long packets, bool busyPoll = true)
    {
        return BenchDaemon.With((daemon, socket) =>
        {
            var peer = daemon.Peer!;
            long allocatedBefore = daemon.DataplaneAllocatedBytes;
            int payload = BenchDaemon.PayloadFor(frameSize);
            var destination = NetAddress.Parse("198.18.0.2");
            long sent = 0;
            var clock = Stopwatch.StartNew();
            var deadline = TimeSpan.FromSeconds(60);
            while (Volatile.Read(ref peer.SunkPackets) < packets && clock.Elapsed < deadline)
            {
                for (int i = 0; i < 64 && sent < packets; i++)
                {
                    if (socket.GetSendBuffer().IsEmpty)
                    {
                        break;
                    }
                    socket.CommitSendTo(payload, destination, 9);
                    sent++;
                }
                socket.Flush();
            }
            double seconds = clock.Elapsed.TotalSeconds;
            return (Volatile.Read(ref peer.SunkPackets) / seconds, daemon.Engine.Counters.TotalDrops(), daemon.DataplaneAllocatedBytes - allocatedBefore);
        }, options => options.BusyPoll = busyPoll);
    }
}
