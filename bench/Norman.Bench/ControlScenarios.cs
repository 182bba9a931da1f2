using Norman.Soak;
using System.Diagnostics;
using Norman.Client;
using Norman.Core.Protocol;

namespace Norman.Bench;

/// <summary>Scenario G: what the control plane costs an application and an administrator.</summary>
public static class ControlScenarios
{
    /// <summary>
    /// Median microseconds to open a socket and bind it (the bind request on the process's control connection, made by
    /// the first socket and shared by the others; the pipes mapped), <paramref name="count"/> in a row, all kept open;
    /// then to close each (the application's side: the daemon finishes behind it).
    /// </summary>
    public static (double OpenP50, double CloseP50) SocketOpenAndCloseMicroseconds(int count, bool busyPoll = true, int pauseMilliseconds = 0)
    {
        return BenchDaemon.With((daemon, first) =>
        {
            var opens = new double[count];
            var closes = new double[count];
            var sockets = new NormanUdpSocket[count];
            for (int i = 0; i < count; i++)
            {
                if (pauseMilliseconds > 0)
                {
                    Thread.Sleep(pauseMilliseconds); // pacing, as an application opens sockets while it works
                }
                long start = Stopwatch.GetTimestamp();
                sockets[i] = new NormanUdpSocket(daemon.SocketPath);
                sockets[i].Bind(first.LocalPort + 1 + i);
                opens[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }
            for (int i = 0; i < count; i++)
            {
                long start = Stopwatch.GetTimestamp();
                sockets[i].Dispose();
                closes[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }
            return (new RoundTrips(opens).Percentile(50), new RoundTrips(closes).Percentile(50));
        }, options => options.BusyPoll = busyPoll);
    }

    /// <summary>
    /// Median µs to open and bind a socket, one every <paramref name="pauseMilliseconds"/> ms, each closed before the
    /// next opens: a process that opens and closes sockets as it works, whose memory its connection keeps for the next.
    /// </summary>
    public static double SocketReopenMicroseconds(int count, int pauseMilliseconds)
    {
        return BenchDaemon.With((daemon, first) =>
        {
            var opens = new double[count];
            for (int i = 0; i < count; i++)
            {
                Thread.Sleep(pauseMilliseconds);
                long start = Stopwatch.GetTimestamp();
                using var socket = new NormanUdpSocket(daemon.SocketPath);
                socket.Bind(first.LocalPort + 1 + i);
                opens[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }
            return new RoundTrips(opens).Percentile(50);
        });
    }

    /// <summary>
    /// Median µs of a control round trip that does nothing (hello), one every <paramref name="pauseMilliseconds"/> ms (0:
    /// back to back): the part of every bind, connect and listing that is the daemon's threads waking and answering.
    /// </summary>
    public static double ControlRoundTripMicroseconds(int count, int pauseMilliseconds)
    {
        return BenchDaemon.With((daemon, _) =>
        {
            using var control = ControlChannel.Connect(daemon.SocketPath);
            var trips = new double[count];
            for (int i = 0; i < count; i++)
            {
                if (pauseMilliseconds > 0)
                {
                    Thread.Sleep(pauseMilliseconds);
                }
                long start = Stopwatch.GetTimestamp();
                control.Call(new ControlRequest { Op = ControlProtocol.Ops.Hello });
                trips[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            }
            return new RoundTrips(trips).Percentile(50);
        });
    }

    /// <summary>
    /// Milliseconds from restoring a policy of <paramref name="rules"/> rules (replacing the empty one) until the
    /// dataplane runs it, on a daemon whose only busy thread is its dataplane, as an administrator meets it.
    /// </summary>
    public static double PolicyApplyMilliseconds(int rules)
    {
        var lines = BenchDaemon.RulesNotMatching(rules);
        return BenchDaemon.With((daemon, _) => Apply(daemon, lines));
    }

    /// <summary>
    /// While the peer sends at a rate the application keeps up with (100 Mbit/s of 64-byte frames, 148,810 packets a
    /// second, into a 16,384-slot pipe), a policy of <paramref name="rules"/> rules that this flow does not match
    /// replaces the empty one: milliseconds from the restore call until the dataplane runs the new policy (sharing the
    /// two cores with the dataplane and the busy-polling application), and the packets the application did not
    /// receive (of those sent before, during and after the swap).
    /// </summary>
    public static (double ApplyMs, long Lost) PolicySwap(int rules, long packets)
    {
        var lines = BenchDaemon.RulesNotMatching(rules);
        return BenchDaemon.With((daemon, unused) =>
        {
            using var socket = new NormanUdpSocket(daemon.SocketPath);
            socket.Bind(unused.LocalPort + 1, slotCount: 16384);
            long received = 0;
            double applyMs = 0;
            Task? swap = null;
            var clock = Stopwatch.StartNew();
            daemon.Peer!.StartFlood(40000, socket.LocalPort, BenchDaemon.PayloadFor(64), packets);
            var quiet = Stopwatch.StartNew();
            while (received < packets && quiet.Elapsed < TimeSpan.FromMilliseconds(500) && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                while (socket.TryPeek(out _))
                {
                    socket.Release();
                    received++;
                    quiet.Restart();
                }
                if (swap is null && received >= packets / 4)
                {
                    // On another thread, as `norman filter restore` is another process: the application keeps reading.
                    swap = Task.Run(() => applyMs = Apply(daemon, lines));
                }
            }
            swap?.GetAwaiter().GetResult();
            return (applyMs, packets - received);
        }, options => options.LineRateBitsPerSecond = 100_000_000);
    }

    /// <summary>Restores the policy and waits until the dataplane runs it; milliseconds from the call.</summary>
    private static double Apply(Norman.Daemon.NormanDaemon daemon, List<string> lines)
    {
        long before = daemon.Engine.Policy.Generation;
        long start = Stopwatch.GetTimestamp();
        daemon.Policy.Restore(lines, "bench");
        while (daemon.Engine.Policy.Generation == before && Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(30))
        {
            Thread.SpinWait(100);
        }
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }
}
