using System.Diagnostics;
using System.Net;
using Norman.Client;
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

    private static async Task<double> BulkBitsPerSecond(long bytes)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-bench-tcp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        string wire = $"bench-{Guid.NewGuid():N}";
        DaemonOptions Host(string name, string address) => new()
        {
            SocketPath = Path.Combine(directory, $"{name}.sock"), Port = $"wire:{wire}", Address = address, LineRateBitsPerSecond = 0,
        };
        var left = NormanDaemon.Start(Host("left", "198.18.0.1/24"), NullLog.Instance);
        var right = NormanDaemon.Start(Host("right", "198.18.0.2/24"), NullLog.Instance);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            using var listener = new NormanTcpListener(7000, Path.Combine(directory, "right.sock"));
            var accepting = listener.AcceptAsync(timeout.Token);
            await using var client = await NormanTcpStream.ConnectAsync(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7000),
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
