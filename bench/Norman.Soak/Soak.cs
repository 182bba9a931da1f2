using System.Diagnostics;
using Norman.Client;
using Norman.Core.Protocol;
using Norman.Daemon;

namespace Norman.Soak;

/// <summary>
/// The soak: a daemon carries steady traffic for a long time while everything around it changes — the policy is
/// replaced every second, a capture starts and stops every second, sockets open and close without pause (among them
/// TCP sockets whose connection tables claim every connection), and listings of every socket race those closes. At
/// the end, every packet the policy accepted and the pipes had room for must have reached its application, and the
/// daemon must hold no more memory and descriptors than after its warm-up.
/// </summary>
public static unsafe class Soak
{
    private const int Receivers = 4;
    private const long FloodBatch = 100_000;
    /// <summary>Heap growth tolerated between the warm-up and the end, after a full collection: allocator noise, not a leak.</summary>
    public const long HeapSlackBytes = 2 << 20;
    /// <summary>
    /// Descriptors the runtime may open once, lazily, after the warm-up (another socket engine's epoll, say); a leak
    /// grows with the churn — thousands of sockets and captures — and shows far past this.
    /// </summary>
    public const int DescriptorSlack = 2;

    public sealed record Report(double Seconds, long Sent, long Received, long RxPipeFull, long Filtered, long PolicySwaps, long Captures,
        long SocketsChurned, long Listings, long HeapStartBytes, long HeapEndBytes, long RssStartBytes, long RssEndBytes, int FdsStart, int FdsEnd,
        string Counters, string NewDescriptors)
    {
        /// <summary>Accepted by the policy, room in the pipes, and still not delivered.</summary>
        public long Lost => Sent - Received - RxPipeFull - Filtered;
        public bool Passed => Lost == 0 && HeapEndBytes - HeapStartBytes < HeapSlackBytes && FdsEnd <= FdsStart + DescriptorSlack;

        public override string ToString() =>
            $"soak: {(Passed ? "PASSED" : "FAILED")} after {Seconds:F0} s: sent {Sent:N0}, received {Received:N0}, lost {Lost:N0} " +
            $"(rx pipe full {RxPipeFull:N0}, filtered {Filtered:N0}); {PolicySwaps:N0} policy swaps, {Captures:N0} captures started and stopped, " +
            $"{SocketsChurned:N0} sockets opened and closed, {Listings:N0} listings racing the closes; heap {HeapStartBytes / 1024:N0} → {HeapEndBytes / 1024:N0} KiB, " +
            $"resident {RssStartBytes >> 20:N0} → {RssEndBytes >> 20:N0} MiB, descriptors {FdsStart} → {FdsEnd}{(NewDescriptors.Length > 0 ? $" (new: {NewDescriptors})" : "")}\n  counters: {Counters}";
    }

    public static Report Run(TimeSpan duration, Action<string> progress)
    {
        return BenchDaemon.With((daemon, first) =>
        {
            var peer = daemon.Peer!;
            var sockets = new List<NormanUdpSocket> { first };
            for (int i = 1; i < Receivers; i++)
            {
                var socket = new NormanUdpSocket(daemon.SocketPath);
                socket.Bind(first.LocalPort + i, slotCount: 4096);
                sockets.Add(socket);
            }
            using var stop = new CancellationTokenSource();
            using var stopReceiving = new CancellationTokenSource();
            long received = 0, swaps = 0, captures = 0, churned = 0, listings = 0;
            var receiver = new Thread(() =>
            {
                while (!stopReceiving.IsCancellationRequested)
                {
                    bool any = false;
                    foreach (var socket in sockets)
                    {
                        for (int batch = 0; batch < 64 && socket.TryPeek(out _); batch++)
                        {
                            socket.Release();
                            Interlocked.Increment(ref received);
                            any = true;
                        }
                    }
                    if (!any)
                    {
                        Thread.Yield();
                    }
                }
            }) { IsBackground = true, Name = "soak receiver" };
            var policies = new[] { BenchDaemon.RulesNotMatching(200), [.. BenchDaemon.RulesNotMatching(100), "add ingress udp dport 9999 drop"] };
            var everySecond = new Thread(() =>
            {
                for (long second = 0; !stop.Token.WaitHandle.WaitOne(1000); second++)
                {
                    daemon.Policy.Restore(policies[second % 2], "the soak's policy");
                    swaps++;
                    // A capture of everything that nobody reads, for half a second: its session's end removes it.
                    using (var capture = ControlChannel.Connect(daemon.SocketPath))
                    {
                        var fds = new List<int>();
                        capture.Call(new ControlRequest { Op = ControlProtocol.Ops.CaptureStart, Expression = "udp" }, fds);
                        Norman.Core.Shm.FdPassing.CloseAll(fds);
                        captures++;
                        stop.Token.WaitHandle.WaitOne(500);
                    }
                }
            }) { IsBackground = true, Name = "soak policy and capture" };
            var churn = new Thread(() =>
            {
                var sink = Norman.Core.Packets.NetAddress.Parse("198.18.0.2");
                using var control = ControlChannel.Connect(daemon.SocketPath);
                while (!stop.IsCancellationRequested)
                {
                    using (var socket = new NormanUdpSocket(daemon.SocketPath))
                    {
                        socket.Bind(0, slotCount: 16);
                        socket.TrySendTo("churn"u8, sink, 9);
                    }
                    BindAndCloseScribbledTcp(control);
                    churned += 2;
                    stop.Token.WaitHandle.WaitOne(5); // about 150 a second: churn, not a load test of the control plane
                }
            }) { IsBackground = true, Name = "soak churn" };
            var lister = new Thread(() =>
            {
                using var control = ControlChannel.Connect(daemon.SocketPath);
                while (!stop.IsCancellationRequested)
                {
                    control.CallPages(new ControlRequest { Op = ControlProtocol.Ops.Sockets });
                    control.Call(new ControlRequest { Op = ControlProtocol.Ops.Stats });
                    listings += 2;
                    stop.Token.WaitHandle.WaitOne(2);
                }
            }) { IsBackground = true, Name = "soak lister" };
            receiver.Start();
            everySecond.Start();
            churn.Start();
            lister.Start();

            var clock = Stopwatch.StartNew();
            var warmUp = TimeSpan.FromSeconds(Math.Max(3, duration.TotalSeconds / 10));
            (long Heap, long Rss, int Fds, HashSet<string> Targets) start = default;
            bool measured = false;
            long sent = 0;
            var nextReport = TimeSpan.FromSeconds(10);
            while (clock.Elapsed < duration)
            {
                if (peer.FloodRemaining == 0)
                {
                    peer.StartFlood(40000, first.LocalPort, BenchDaemon.PayloadFor(64), FloodBatch, flows: 16, destinationPorts: Receivers);
                    sent += FloodBatch;
                }
                if (!measured && clock.Elapsed > warmUp)
                {
                    start = Resources();
                    measured = true;
                }
                if (clock.Elapsed > nextReport)
                {
                    progress($"soak: {clock.Elapsed.TotalSeconds:F0} s, sent {sent:N0}, received {Interlocked.Read(ref received):N0}, " +
                        $"{swaps} swaps, {captures} captures, {churned} sockets churned, heap {GC.GetTotalMemory(false) >> 10:N0} KiB");
                    nextReport += TimeSpan.FromSeconds(10);
                }
                Thread.Sleep(10); // pacing the main loop: the wire's line rate paces the packets
            }
            stop.Cancel();
            everySecond.Join();
            churn.Join();
            lister.Join();
            // The last flood drains: the wire's rate bounds how long that takes.
            for (var drain = Stopwatch.StartNew(); peer.FloodRemaining > 0 && drain.Elapsed < TimeSpan.FromSeconds(30);)
            {
                Thread.Sleep(10);
            }
            long counted = 0;
            for (var settle = Stopwatch.StartNew(); settle.Elapsed < TimeSpan.FromSeconds(10);)
            {
                // Done when the last packets are in (received, or counted as dropped) and stay so.
                long now = Interlocked.Read(ref received) + Drops(daemon);
                if (now == counted && now >= sent)
                {
                    break;
                }
                counted = now;
                Thread.Sleep(100);
            }
            stopReceiving.Cancel();
            receiver.Join();
            var counters = daemon.Engine.Counters;
            // Control sessions (captures, churned sockets) end asynchronously: give them a moment to be released.
            for (var release = Stopwatch.StartNew(); daemon.Control.Sockets.Count > Receivers && release.Elapsed < TimeSpan.FromSeconds(10);)
            {
                Thread.Sleep(10);
            }
            // The last capture's and churned sockets' descriptors close as their sessions end: a moment to settle.
            var end = Resources();
            for (var settle = Stopwatch.StartNew(); end.Fds > start.Fds && settle.Elapsed < TimeSpan.FromSeconds(5); end = Resources())
            {
                Thread.Sleep(50);
            }
            foreach (var socket in sockets.Skip(1))
            {
                socket.Dispose();
            }
            return new Report(clock.Elapsed.TotalSeconds, sent, Interlocked.Read(ref received),
                counters.Drops(Norman.Daemon.Dataplane.DropReason.RxPipeFull), counters.Drops(Norman.Daemon.Dataplane.DropReason.FilteredIngress),
                swaps, captures, churned, listings, start.Heap, end.Heap, start.Rss, end.Rss, start.Fds, end.Fds,
                string.Join(", ", counters.Snapshot().Where(c => c.Value != 0).Select(c => $"{c.Key} {c.Value:N0}")),
                string.Join(", ", end.Targets.Except(start.Targets ?? [])));
        }, options =>
        {
            // A paced wire (148,810 packets a second of 64-byte frames) that the receiver keeps up with on two cores;
            // the dataplane sleeps when idle, as a shared machine wants.
            options.LineRateBitsPerSecond = 100_000_000;
            options.BusyPoll = false;
        });
    }

    /// <summary>A TCP socket whose connection table claims 0xffffffff connections of garbage, closed at once: what listings race.</summary>
    private static void BindAndCloseScribbledTcp(ControlChannel control)
    {
        var fds = new List<int>();
        var grant = control.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "tcp", Port = 0, SlotCount = 16 }, fds).Socket!;
        Norman.Core.Shm.FdPassing.CloseAll(fds.Skip(1));
        using (var region = Norman.Core.Shm.SharedMemory.Map(fds[0], grant.RegionBytes))
        {
            byte* table = region.Address + Norman.Core.Pipes.ConnectionTable.Offset(grant.SlotCount, grant.SlotSize);
            Random.Shared.NextBytes(new Span<byte>(table + Norman.Core.Pipes.ConnectionTable.HeaderSize, 4096));
            Norman.Core.Pipes.ConnectionTable.Publish(table, -1);
        }
        control.Call(new ControlRequest { Op = ControlProtocol.Ops.Close, SocketId = grant.SocketId });
    }

    private static long Drops(NormanDaemon daemon) =>
        daemon.Engine.Counters.Drops(Norman.Daemon.Dataplane.DropReason.RxPipeFull) + daemon.Engine.Counters.Drops(Norman.Daemon.Dataplane.DropReason.FilteredIngress);

    private static (long Heap, long Rss, int Fds, HashSet<string> Targets) Resources()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var fds = Directory.GetFiles("/proc/self/fd");
        var targets = new HashSet<string>();
        foreach (var fd in fds)
        {
            try
            {
                targets.Add($"{Path.GetFileName(fd)}→{new FileInfo(fd).LinkTarget}");
            }
            catch (IOException)
            {
                // closed while listed
            }
        }
        return (GC.GetTotalMemory(true), Process.GetCurrentProcess().WorkingSet64, fds.Length, targets);
    }
}
