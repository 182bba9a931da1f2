using System.Diagnostics;
using Norman.Client;

namespace Norman.Bench;

/// <summary>
/// Isolation (the hardening issue, item 5): the peer → application flow alone, and beside a thousand applications
/// (control connections of another process) closing and reopening their sockets as fast as they can. Each pair of
/// runs is measured back to back, and the figure is the median of the pairs' ratios.
/// </summary>
public static class IsolationScenario
{
    public static IEnumerable<Measurement> Churn(int runs, long packets, int applications)
    {
        var alone = new Measurement("isolation_alone_mpps_64", "isolation: peer → application, 64-byte frames, alone (the pair's baseline)", "Mpps");
        var beside = new Measurement("isolation_churn_mpps_64", $"isolation: the same beside {applications:N0} applications closing and reopening their sockets in a loop", "Mpps");
        var ratio = new Measurement("isolation_churn_percent", "isolation: the flow's rate beside the churn, in % of its rate alone (median of the pairs)", "%");
        var dataplane = new Measurement("isolation_churn_dataplane_percent",
            "isolation: the dataplane's rate (packets delivered or dropped a second) beside the churn, in % of its rate alone", "%");
        var churned = new Measurement("isolation_churned_sockets_per_second", "isolation: sockets the churning applications closed and reopened a second", "sockets/s");
        for (int run = 0; run < runs; run++)
        {
            var a = DataplaneScenarios.PeerToApplication(64, packets);
            var clock = Stopwatch.StartNew();
            long count = 0;
            var b = DataplaneScenarios.PeerToApplication(64, packets, beside: daemon => Start(daemon.SocketPath, applications, n => count = n));
            alone.Add(a.Pps / 1e6);
            beside.Add(b.Pps / 1e6);
            ratio.Add(b.Pps / a.Pps * 100);
            dataplane.Add(b.ProcessedPps / a.ProcessedPps * 100);
            churned.Add(count / clock.Elapsed.TotalSeconds);
        }
        return [alone, beside, ratio, dataplane, churned];
    }

    /// <summary>Starts `norman-bench churn` against the daemon; disposing it stops the churn and reports how many sockets it reopened.</summary>
    private static IDisposable Start(string socketPath, int applications, Action<long> churned)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardInput = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "churn", socketPath, applications.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }
        var process = Process.Start(start)!;
        // Churning starts once every application holds its socket.
        if (process.StandardOutput.ReadLine() != "ready")
        {
            throw new InvalidOperationException("norman-bench churn did not start");
        }
        return new Stopper(process, churned);
    }

    private sealed class Stopper(Process process, Action<long> churned) : IDisposable
    {
        public void Dispose()
        {
            process.StandardInput.Close();
            churned(long.Parse(process.StandardOutput.ReadLine() ?? "0", System.Globalization.CultureInfo.InvariantCulture));
            process.WaitForExit();
            process.Dispose();
        }
    }

    /// <summary>
    /// The helper process: <paramref name="applications"/> sockets, each on its own control connection, closed and
    /// reopened one after another until stdin closes; prints "ready", then the number reopened.
    /// </summary>
    public static void Run(string socketPath, int applications)
    {
        var sockets = new NormanUdpSocket[applications];
        for (int i = 0; i < applications; i++)
        {
            sockets[i] = Open(socketPath);
        }
        Console.WriteLine("ready");
        Console.Out.Flush();
        long reopened = 0;
        var stdin = Task.Run(Console.In.ReadLine); // the console reader's async read is synchronous
        while (!stdin.IsCompleted)
        {
            int i = (int)(reopened % applications);
            sockets[i].Dispose();
            sockets[i] = Open(socketPath);
            reopened++;
        }
        foreach (var socket in sockets)
        {
            socket.Dispose();
        }
        Console.WriteLine(reopened);
    }

    private static NormanUdpSocket Open(string socketPath)
    {
        var socket = new NormanUdpSocket(socketPath);
        socket.Bind(0, slotCount: 16);
        return socket;
    }
}
