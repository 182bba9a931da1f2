using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Norman.Client;
using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Bench;

/// <summary>
/// Issue 10's comparisons, each in one run over one veth pair between two network namespaces: the real `wrk` against
/// the example ASP.NET Core app on Kestrel's own sockets and on Norman (a daemon on the server's end by AF_PACKET);
/// and bulk TCP between the kernel's stack in the client namespace and, in the server namespace, the kernel's stack
/// or Norman's, each way. Needs root and wrk; skipped otherwise.
/// </summary>
public static partial class HttpScenarios
{
    private const int HttpPort = 8080;
    private const int BulkPort = 9100;

    public static string? WhyNot() =>
        RealWireScenarios.WhyNot() ?? (File.Exists("/usr/bin/wrk") ? null : "needs wrk (apt install wrk)");

    // port: Norman's port on the server's veth end, afpacket or xdp (then every key starts with "xdp_").
    public static IEnumerable<Measurement> Requests(int runs, bool quick, string port = "afpacket")
    {
        double seconds = quick ? 3 : 10;
        var figures = new Dictionary<string, Measurement>();
        string prefix = port == "afpacket" ? "" : $"{port}_";
        Measurement Figure(string key, string description, string unit) =>
            figures.TryGetValue(prefix + key, out var figure) ? figure : figures[prefix + key] = new Measurement(prefix + key, description, unit);
        using var hosts = new Hosts(port);
        for (int run = 0; run < runs; run++)
        {
            // Alternate which goes first, so that neither always meets a warmer machine.
            foreach (bool norman in run % 2 == 0 ? new[] { false, true } : [true, false])
            {
                string who = norman ? "norman" : "kestrel";
                string on = norman ? $"on Norman (UseNorman, {port} port)" : "on Kestrel's sockets";
                var (rps, p50, p99, cpu) = hosts.Wrk(norman, seconds);
                var (_, oneP50, _, _) = hosts.Wrk(norman, seconds, connections: 1);
                Figure($"http_{who}_c1_p50_us", $"wrk, 1 connection, latency p50 {on}", "µs").Add(oneP50);
                Figure($"http_{who}_requests_per_s", $"wrk, 64 connections, GET / of the ASP.NET Core example {on}", "requests/s").Add(rps);
                Figure($"http_{who}_cpu_us_per_request", $"the same, CPU per request: the server's processes (webapp{(norman ? " and daemon" : "")}) and the machine's softirq time {on}", "µs").Add(cpu);
                Figure($"http_{who}_p50_us", $"the same, latency p50 {on}", "µs").Add(p50);
                Figure($"http_{who}_p99_us", $"the same, latency p99 {on}", "µs").Add(p99);
            }
        }
        return figures.Values;
    }

    // port: Norman's port on the server's veth end, afpacket or xdp (then every key starts with "xdp_").
    public static IEnumerable<Measurement> Bulk(int runs, bool quick, string port = "afpacket")
    {
        long bytes = quick ? 64L << 20 : 256L << 20;
        var figures = new Dictionary<string, Measurement>();
        string prefix = port == "afpacket" ? "" : $"{port}_";
        using var hosts = new Hosts(port);
        for (int run = 0; run < runs; run++)
        {
            foreach (bool norman in run % 2 == 0 ? new[] { false, true } : [true, false])
            {
                foreach (bool toServer in new[] { true, false })
                {
                    string who = norman ? "norman" : "kernel";
                    string key = $"{prefix}tcp_bulk_{who}_{(toServer ? "receives" : "sends")}_mbit_per_s";
                    string description = $"TCP: {bytes >> 20} MiB, the kernel's TCP in a namespace {(toServer ? "to" : "from")} {(norman ? $"a Norman application ({port} port)" : "the kernel's TCP")} over veth";
                    if (!figures.TryGetValue(key, out var figure))
                    {
                        figures[key] = figure = new Measurement(key, description, "Mbit/s");
                    }
                    figure.Add(hosts.Bulk(norman, toServer, bytes) / 1e6);
                }
            }
        }
        return figures.Values;
    }

    /// <summary>
    /// The client namespace (198.18.3.1, wrk and the kernel's TCP) and the server namespace: its kernel at
    /// 198.18.3.2, and a Norman daemon on the same veth end by AF_PACKET at 198.18.3.3.
    /// </summary>
    private sealed partial class Hosts : IDisposable
    {
        private readonly string _client, _server, _veth, _directory;
        private readonly Process _daemon;

        public Hosts(string port)
        {
            string id = Guid.NewGuid().ToString("N")[..6];
            (_client, _server, _veth) = ($"nrmb-s-{id}", $"nrmb-r-{id}", $"nrmb{id}");
            _directory = Path.Combine(Path.GetTempPath(), $"norman-bench-http-{id}");
            Directory.CreateDirectory(_directory);
            RealWireScenarios.CreateHosts(_client, _server, _veth);
            // A veth hands the other end TCP's 64 KB segmentation-offload frames whole, where a NIC would cut them to the
            // MTU on the wire: Norman would drop them as too long (counted). The client's kernel segments, as for a NIC without TSO.
            // For an XDP port, whole checksums too: XDP hands Norman no word of a checksum left to offload (docs/xdp.md).
            Run(_client, port == "xdp" ? ["ethtool", "-K", $"{_veth}s", "tx", "off", "tso", "off", "gso", "off"] : ["ethtool", "-K", $"{_veth}s", "tso", "off", "gso", "off"]);
            _daemon = Start(_server, [Environment.ProcessPath!, "daemon", $"{port}:{_veth}r", $"{RealWireScenarios.NormanAddress}/24", SocketPath]);
            Expect(_daemon, "ready");
        }

        private string SocketPath => Path.Combine(_directory, "norman.sock");

        /// <summary>
        /// wrk's requests/s and latency percentiles, and the CPU a request cost: the server's processes (the webapp, and
        /// for Norman its daemon) from /proc/PID/stat, plus the whole machine's softirq time from /proc/stat (where the
        /// kernel's network stack runs, for the client's side too, in both cases), over the measured run.
        /// </summary>
        public (double RequestsPerSecond, double P50, double P99, double CpuMicrosecondsPerRequest) Wrk(bool norman, double seconds, int connections = 64)
        {
            string address = norman ? RealWireScenarios.NormanAddress : RealWireScenarios.ReceiverAddress;
            string webapp = Path.Combine(AppContext.BaseDirectory, "webapp");
            string[] arguments = norman ? ["--urls", $"http://0.0.0.0:{HttpPort}"] : ["--kernel", "--urls", $"http://{address}:{HttpPort}"];
            using var server = Start(_server, [webapp, .. arguments]);
            try
            {
                Expect(server, "webapp: listening");
                string url = $"http://{address}:{HttpPort}/";
                Run(_client, "wrk", "-t1", "-c64", "-d1s", url); // warm-up: the JIT, the connections' first buffers
                int[] serverSide = norman ? [server.Id, _daemon.Id] : [server.Id];
                long cpuBefore = serverSide.Sum(ProcessTicks) + SoftirqTicks();
                string report = Run(_client, "wrk", "-t1", $"-c{connections}", $"-d{seconds.ToString(CultureInfo.InvariantCulture)}s", "--latency", url);
                long cpuTicks = serverSide.Sum(ProcessTicks) + SoftirqTicks() - cpuBefore;
                Console.Error.WriteLine($"  wrk against {(norman ? "Norman" : "Kestrel's sockets")}: {RequestsLine().Match(report).Value.Trim()}");
                if (report.Contains("Socket errors", StringComparison.Ordinal) || report.Contains("Non-2xx", StringComparison.Ordinal))
                {
                    Console.Error.WriteLine(report);
                }
                double rps = double.Parse(RequestsLine().Match(report).Groups[1].Value, CultureInfo.InvariantCulture);
                double cpuMicroseconds = cpuTicks * 1e6 / ClockTicksPerSecond / Math.Max(1, rps * seconds);
                return (rps, Percentile(report, "50%"), Percentile(report, "99%"), cpuMicroseconds);
            }
            finally
            {
                Stop(server);
            }
        }

        /// <summary>USER_HZ: the unit of /proc's CPU times (100 on every Linux architecture .NET runs on).</summary>
        private const double ClockTicksPerSecond = 100;

        /// <summary>A process's user and system time, all its threads, in clock ticks (/proc/PID/stat fields 14 and 15).</summary>
        private static long ProcessTicks(int pid)
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }

        /// <summary>The machine's softirq time in clock ticks (/proc/stat's first line, seventh number).</summary>
        private static long SoftirqTicks() =>
            long.Parse(File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[7], CultureInfo.InvariantCulture);

        /// <summary>Bits per second of one bulk transfer, as the receiving end measured it.</summary>
        public double Bulk(bool norman, bool toServer, long bytes)
        {
            string self = Environment.ProcessPath!;
            string serverAddress = norman ? RealWireScenarios.NormanAddress : RealWireScenarios.ReceiverAddress;
            string[] normanSocket = norman ? [SocketPath] : [];
            string count = bytes.ToString(CultureInfo.InvariantCulture), port = BulkPort.ToString(CultureInfo.InvariantCulture);
            using var sink = toServer
                ? Start(_server, [self, "tcp-sink", port, .. normanSocket])
                : Start(_client, [self, "tcp-sink", port]);
            try
            {
                Expect(sink, "ready");
                string sent = toServer
                    ? Run(_client, self, "tcp-send", serverAddress, port, count)
                    : Run(_server, [self, "tcp-send", RealWireScenarios.SenderAddress, port, count, .. normanSocket]);
                string received = sink.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the TCP sink said nothing");
                sink.WaitForExit();
                var parts = received.Split(' ');
                long got = long.Parse(parts[1], CultureInfo.InvariantCulture);
                if (got != bytes)
                {
                    throw new InvalidOperationException($"sent {bytes} bytes, the sink received {got} ({sent.Trim()})");
                }
                return got * 8 / double.Parse(parts[2], CultureInfo.InvariantCulture);
            }
            finally
            {
                Stop(sink);
            }
        }

        public void Dispose()
        {
            Stop(_daemon);
            RealWireScenarios.Try("netns", "del", _client);
            RealWireScenarios.Try("netns", "del", _server);
            Directory.Delete(_directory, recursive: true);
        }

        private Process Start(string ns, string[] command)
        {
            var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardInput = true };
            foreach (var argument in new[] { "netns", "exec", ns }.Concat(command))
            {
                start.ArgumentList.Add(argument);
            }
            start.Environment["NORMAN_SOCKET"] = SocketPath;
            return Process.Start(start)!;
        }

        private string Run(string ns, params string[] command)
        {
            using var process = Start(ns, command);
            var output = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
            {
                process.Kill();
                throw new TimeoutException($"{string.Join(' ', command)} did not finish in 2 minutes");
            }
            return process.ExitCode == 0 ? output.Result : throw new InvalidOperationException($"{string.Join(' ', command)} exited {process.ExitCode}: {output.Result}");
        }

        private static void Expect(Process process, string start)
        {
            var line = process.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(60)) || line.Result?.StartsWith(start, StringComparison.Ordinal) != true)
            {
                throw new InvalidOperationException($"{process.StartInfo.ArgumentList[3]} did not say '{start}' (said '{(line.IsCompleted ? line.Result : "nothing")}')");
            }
        }

        /// <summary>Asks a helper to stop by closing its input; kills it if it does not within 10 s.</summary>
        private static void Stop(Process process)
        {
            if (process.HasExited)
            {
                return;
            }
            process.StandardInput.Close();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }
        }
    }

    /// <summary>wrk's latency percentile line ("    99%    2.31ms"), in microseconds.</summary>
    private static double Percentile(string report, string percentile)
    {
        var match = Regex.Match(report, $@"^\s*{Regex.Escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", RegexOptions.Multiline);
        if (!match.Success)
        {
            throw new InvalidOperationException($"wrk printed no {percentile} latency:\n{report}");
        }
        double value = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return match.Groups[2].Value switch { "us" => value, "ms" => value * 1e3, _ => value * 1e6 };
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RequestsLine();

    // ---- Helper modes, each run inside a namespace by the scenarios above ----

    /// <summary>`daemon PORT ADDRESS SOCKET`: a daemon as `norman up` starts it, until its input closes.</summary>
    public static void Daemon(string port, string address, string socketPath)
    {
        var daemon = NormanDaemon.Start(new DaemonOptions { SocketPath = socketPath, Port = port, Address = address, LineRateBitsPerSecond = 0 }, NullLog.Instance);
        Console.WriteLine("ready");
        Console.In.ReadToEnd();
        daemon.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>`tcp-sink PORT [SOCKET]`: takes one connection (the kernel's, or Norman's with a daemon socket), reads to its end, prints "received BYTES SECONDS".</summary>
    public static async Task Sink(int port, string? normanSocket)
    {
        var buffer = new byte[1 << 20];
        long received = 0;
        Stopwatch clock;
        if (normanSocket is null)
        {
            using var listener = new TcpListener(IPAddress.Any, port);
            listener.Start();
            Console.WriteLine("ready");
            using var connection = await listener.AcceptSocketAsync();
            clock = Stopwatch.StartNew();
            for (int read; (read = await connection.ReceiveAsync(buffer)) > 0;)
            {
                received += read;
            }
        }
        else
        {
            using var listener = new NormanTcpListener(port, normanSocket);
            Console.WriteLine("ready");
            await using var connection = await listener.AcceptAsync();
            clock = Stopwatch.StartNew();
            for (int read; (read = await connection.ReadAsync(buffer)) > 0;)
            {
                received += read;
            }
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"received {received} {clock.Elapsed.TotalSeconds}"));
    }

    /// <summary>`tcp-send HOST PORT BYTES [SOCKET]`: connects (by the kernel, or by Norman with a daemon socket), sends, closes.</summary>
    public static async Task Send(IPEndPoint to, long bytes, string? normanSocket)
    {
        var chunk = new byte[256 << 10];
        Stream stream;
        if (normanSocket is null)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(to);
            stream = new NetworkStream(socket, ownsSocket: true);
        }
        else
        {
            stream = await NormanTcpStream.ConnectAsync(to, normanSocket);
        }
        await using (stream)
        {
            for (long sent = 0; sent < bytes; sent += chunk.Length)
            {
                await stream.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, bytes - sent)));
            }
            if (stream is NormanTcpStream norman)
            {
                norman.ShutdownSend();
                // Every byte is acknowledged before the connection goes: read until the sink closes its side.
                while (await norman.ReadAsync(chunk) > 0)
                {
                }
            }
        }
        Console.WriteLine($"sent {bytes}");
    }
}
