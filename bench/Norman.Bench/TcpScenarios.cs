using System.Diagnostics;
using System.Net;
using Norman.Client;
using Norman.Client.Tcp;
using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Bench;

/// <summary>
/// TCP between two Norman hosts on a shared wire (two daemons in this process, no root): bulk transfer one way, the
/// client library's stack on both ends, and how fast connections open. The wire has no line rate: the stacks and the dataplanes are the limit.
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

    /// <summary>
    /// Issue 20's `tcp_connect_per_second`: one application opens TCP connections one after another to a listener on the
    /// other Norman host (each a bind and a connect on the control connection, a handshake, then a close), and beside it,
    /// in the same run, the kernel's connect-and-close over loopback. Each Norman connection is still a socket of its own
    /// (memory, a protocol thread): this says what that costs until connections share an endpoint.
    /// </summary>
    public static IEnumerable<Measurement> ConnectRate(int runs, bool quick)
    {
        int connections = quick ? 200 : 1000;
        var norman = new Measurement("tcp_connect_per_second", $"TCP: {connections} connections opened and closed one after another between two Norman hosts", "/s");
        var kernel = new Measurement("kernel_tcp_connect_per_second", "the same with the kernel's sockets over loopback", "/s");
        var ratio = new Measurement("tcp_connect_vs_kernel", "Norman over the kernel, each pair in one run", "×");
        for (int run = 0; run < runs; run++)
        {
            double n = OnTwoHosts(async (directory, token) =>
            {
                using var listener = new NormanTcpListener(7000, Path.Combine(directory, "right.sock"));
                var accepting = Task.Run(async () =>
                {
                    for (int i = 0; i < connections; i++)
                    {
                        await using var accepted = await listener.AcceptAsync(token);
                    }
                }, token);
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < connections; i++)
                {
                    await using var client = await NormanTcpStream.ConnectAsync(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7000),
                        TcpCongestionControl.Cubic, Path.Combine(directory, "left.sock"), token);
                }
                double rate = connections / clock.Elapsed.TotalSeconds;
                await accepting;
                return rate;
            }).GetAwaiter().GetResult();
            double k = KernelConnectsPerSecond(connections);
            norman.Add(n);
            kernel.Add(k);
            ratio.Add(n / k);
        }
        return [norman, kernel, ratio];
    }

    private static double KernelConnectsPerSecond(int connections)
    {
        using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(connections);
        var accepting = Task.Run(() =>
        {
            for (int i = 0; i < connections; i++)
            {
                listener.Accept().Dispose();
            }
        });
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < connections; i++)
        {
            using var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            client.Connect(listener.LocalEndPoint!);
        }
        double rate = connections / clock.Elapsed.TotalSeconds;
        accepting.Wait(TimeSpan.FromSeconds(60));
        return rate;
    }

    /// <summary>
    /// Runs <paramref name="run"/> with two Norman hosts on a shared wire ("left.sock" at 198.18.0.1, "right.sock" at .2),
    /// the left one as <paramref name="configureLeft"/> changes it (an impaired cable), within two minutes.
    /// </summary>
    private static async Task<T> OnTwoHosts<T>(Func<string, CancellationToken, Task<T>> run, Action<DaemonOptions>? configureLeft = null)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-bench-tcp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        string wire = $"bench-{Guid.NewGuid():N}";
        DaemonOptions Host(string name, string address) => new()
        {
            SocketPath = Path.Combine(directory, $"{name}.sock"), Port = $"wire:{wire}", Address = address, LineRateBitsPerSecond = 0,
        };
        var leftOptions = Host("left", "198.18.0.1/24");
        configureLeft?.Invoke(leftOptions);
        var left = NormanDaemon.Start(leftOptions, NullLog.Instance);
        var right = NormanDaemon.Start(Host("right", "198.18.0.2/24"), NullLog.Instance);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            return await run(directory, timeout.Token);
        }
        finally
        {
            await left.DisposeAsync();
            await right.DisposeAsync();
            Directory.Delete(directory, recursive: true);
        }
    }

    private static Task<double> BulkBitsPerSecond(long bytes, TcpCongestionControl algorithm = TcpCongestionControl.Cubic, bool lossy = false) =>
        OnTwoHosts(async (directory, token) =>
        {
            using var listener = new NormanTcpListener(7000, Path.Combine(directory, "right.sock"));
            var accepting = listener.AcceptAsync(token);
            await using var client = await NormanTcpStream.ConnectAsync(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7000), algorithm,
                Path.Combine(directory, "left.sock"), token);
            await using var server = await accepting;
            var chunk = new byte[256 << 10];
            var clock = Stopwatch.StartNew();
            var sending = Task.Run(async () =>
            {
                for (long sent = 0; sent < bytes; sent += chunk.Length)
                {
                    await client.WriteAsync(chunk, token);
                }
                client.ShutdownSend();
            });
            long received = 0;
            int read;
            while ((read = await server.ReadAsync(chunk.AsMemory(), token)) > 0)
            {
                received += read;
            }
            await sending;
            return received * 8 / clock.Elapsed.TotalSeconds;
        }, lossy ? left => { left.WireLoss = 0.01; left.WireDelayMilliseconds = 20; } : null);
}
