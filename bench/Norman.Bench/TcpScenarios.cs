using System.Diagnostics;
using System.Net;
using Norman.Client;
using Norman.Client.Tcp;
using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Bench;

/// <summary>
/// TCP between two Norman hosts on a shared wire (two daemons in this process, no root): bulk transfer one way, the
/// client library's stack on both ends. The wire has no line rate: the stacks and the dataplanes are the limit.
/// </summary>
public static class TcpScenarios
{
    public static IEnumerable<Measurement> Bulk(int runs, bool quick)
    {
        long bytes = quick ? 64L << 20 : 256L << 20;
        var figure = new Measurement("tcp_bulk_mbit_per_s", $"TCP: {bytes >> 20} MiB one way between two Norman hosts on a shared wire, application to application", "Mbit/s");
        for (int run = 0; run < runs; run++)
        {
            figure.Add(BulkBitsPerSecond(bytes).GetAwaiter().GetResult() / 1e6);
        }
        return [figure];
    }

    /// <summary>
    /// The same over a long, lossy cable: the sender's side loses 1% of frames each way and holds each frame it sends
    /// for 20 ms (Norman's own impairment; this kernel has no netem to give the kernel the same cable). CUBIC and
    /// NewReno, each pair in one run: what CUBIC and SACK buy where a window takes long to regain.
    /// </summary>
    public static IEnumerable<Measurement> LossyLongPath(int runs, bool quick)
    {
        long bytes = quick ? 4L << 20 : 8L << 20;
        var cubic = new Measurement("tcp_lossy_cubic_mbit_per_s", $"TCP: {bytes >> 20} MiB between two Norman hosts, 1% loss and 20 ms delay, CUBIC", "Mbit/s");
        var reno = new Measurement("tcp_lossy_newreno_mbit_per_s", $"the same, NewReno", "Mbit/s");
        var ratio = new Measurement("tcp_lossy_cubic_vs_newreno", "the same, CUBIC over NewReno, each pair in one run", "×");
        for (int run = 0; run < runs; run++)
        {
            double c = BulkBitsPerSecond(bytes, TcpCongestionControl.Cubic, lossy: true).GetAwaiter().GetResult() / 1e6;
            double r = BulkBitsPerSecond(bytes, TcpCongestionControl.NewReno, lossy: true).GetAwaiter().GetResult() / 1e6;
            cubic.Add(c);
            reno.Add(r);
            ratio.Add(c / r);
        }
        return [cubic, reno, ratio];
    }

    private static async Task<double> BulkBitsPerSecond(long bytes, TcpCongestionControl algorithm = TcpCongestionControl.Cubic, bool lossy = false)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-bench-tcp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        string wire = $"bench-{Guid.NewGuid():N}";
        DaemonOptions Host(string name, string address) => new()
        {
            SocketPath = Path.Combine(directory, $"{name}.sock"), Port = $"wire:{wire}", Address = address, LineRateBitsPerSecond = 0,
        };
        var leftOptions = Host("left", "198.18.0.1/24");
        if (lossy)
        {
            leftOptions.WireLoss = 0.01;
            leftOptions.WireDelayMilliseconds = 20;
        }
        var left = NormanDaemon.Start(leftOptions, NullLog.Instance);
        var right = NormanDaemon.Start(Host("right", "198.18.0.2/24"), NullLog.Instance);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            using var listener = new NormanTcpListener(7000, Path.Combine(directory, "right.sock"));
            var accepting = listener.AcceptAsync(timeout.Token);
            await using var client = await NormanTcpStream.ConnectAsync(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7000), algorithm,
                Path.Combine(directory, "left.sock"), timeout.Token);
            await using var server = await accepting;
            var chunk = new byte[256 << 10];
            var clock = Stopwatch.StartNew();
            var sending = Task.Run(async () =>
            {
                for (long sent = 0; sent < bytes; sent += chunk.Length)
                {
                    await client.WriteAsync(chunk, timeout.Token);
                }
                client.ShutdownSend();
            });
            long received = 0;
            int read;
            while ((read = await server.ReadAsync(chunk.AsMemory(), timeout.Token)) > 0)
            {
                received += read;
            }
            await sending;
            return received * 8 / clock.Elapsed.TotalSeconds;
        }
        finally
        {
            await left.DisposeAsync();
            await right.DisposeAsync();
            Directory.Delete(directory, recursive: true);
        }
    }
}
