using Norman.Soak;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Norman.Bench;

/// <summary>
/// Issue 18's benchmark: unmodified programs from Debian on the kernel's sockets and on Norman (through `norman run`'s
/// interposer), in one run, over the same veth pair as the HTTP comparison (Norman on the server's end by AF_PACKET):
/// redis-benchmark against redis-server, wrk against nginx, sockperf's UDP ping-pong, and iperf3's TCP both ways.
/// </summary>
public static partial class HttpScenarios
{
    public static string? WhyNotPrograms() =>
        RealWireScenarios.WhyNot()
        ?? (File.Exists("/usr/bin/redis-server") && File.Exists("/usr/bin/redis-benchmark") && File.Exists("/usr/bin/iperf3") && File.Exists("/usr/sbin/nginx")
            && File.Exists("/usr/bin/sockperf")
            ? null : "needs redis-server, redis-tools, iperf3, nginx and sockperf (apt install redis-server redis-tools iperf3 nginx sockperf)");

    public static IEnumerable<Measurement> Programs(int runs, bool quick)
    {
        int requests = quick ? 20_000 : 100_000;
        int seconds = quick ? 3 : 10;
        var figures = new Dictionary<string, Measurement>();
        void Add(string key, string description, string unit, double value)
        {
            if (!figures.TryGetValue(key, out var figure))
            {
                figures[key] = figure = new Measurement(key, description, unit);
            }
            figure.Add(value);
        }
        using var hosts = new Hosts("afpacket");
        for (int run = 0; run < runs; run++)
        {
            foreach (bool norman in run % 2 == 0 ? new[] { false, true } : [true, false])
            {
                string who = norman ? "norman" : "kernel";
                string on = norman ? "redis-server under norman run (afpacket port)" : "redis-server on the kernel's sockets";
                foreach (int pipeline in new[] { 1, 16 })
                {
                    var result = hosts.Redis(norman, pipeline, requests);
                    foreach (var (test, rps, p50, p99) in result)
                    {
                        Add($"redis_{who}_{test}_p{pipeline}_requests_per_s", $"redis-benchmark -c 50 -P {pipeline} -t {test}, {on}", "requests/s", rps);
                        if (pipeline == 1)
                        {
                            Add($"redis_{who}_{test}_p1_p50_us", $"the same, latency p50, {on}", "µs", p50);
                            Add($"redis_{who}_{test}_p1_p99_us", $"the same, latency p99, {on}", "µs", p99);
                        }
                    }
                }
                foreach (int workers in new[] { 0, 2 })
                {
                    var web = hosts.Nginx(norman, seconds, workers);
                    string shape = workers == 0 ? "one process" : $"a master and {workers} workers";
                    string nginxOn = norman ? $"nginx ({shape}) under norman run" : $"nginx ({shape}) on the kernel's sockets";
                    string key = workers == 0 ? "nginx" : $"nginx_{workers}workers";
                    Add($"{key}_{who}_requests_per_s", $"wrk -c64 {seconds} s, GET / (27 bytes) of {nginxOn}", "requests/s", web.RequestsPerSecond);
                    Add($"{key}_{who}_p50_us", $"the same, latency p50, {nginxOn}", "µs", web.P50);
                    Add($"{key}_{who}_p99_us", $"the same, latency p99, {nginxOn}", "µs", web.P99);
                }
                var (half50, half99) = hosts.Sockperf(norman, seconds);
                string sockperfOn = norman ? "sockperf server under norman run" : "sockperf server on the kernel's sockets";
                Add($"sockperf_{who}_p50_us", $"sockperf ping-pong (UDP, 14 bytes) {seconds} s against a {sockperfOn}, half the round trip, p50", "µs", half50);
                Add($"sockperf_{who}_p99_us", $"the same, p99", "µs", half99);
                foreach (bool reverse in new[] { false, true })
                {
                    string way = reverse ? "sends" : "receives";
                    Add($"iperf3_{who}_{way}_gbit_per_s", $"iperf3 TCP {seconds} s, the server {way} ({(norman ? "under norman run" : "on the kernel")})", "Gbit/s",
                        hosts.Iperf3(norman, reverse, seconds) / 1e9);
                }
            }
        }
        return figures.Values;
    }

    private sealed partial class Hosts
    {
        private const int RedisPort = 6380, IperfPort = 5202, NginxPort = 8082, SockperfPort = 11112;

        /// <summary>What `norman run` does: the interposer preloaded, libnorman named, the daemon's socket (set by Start).</summary>
        private static string[] UnderNormanRun(bool norman) => norman
            ? ["env", $"LD_PRELOAD={Path.Combine(SourceTree.NativeDirectory, "libnorman-preload.so")}", $"NORMAN_LIBRARY={Path.Combine(SourceTree.NativeDirectory, "libnorman.so")}"]
            : [];

        private static string Address(bool norman) => norman ? RealWireScenarios.NormanAddress : RealWireScenarios.ReceiverAddress;

        public List<(string Test, double RequestsPerSecond, double P50, double P99)> Redis(bool norman, int pipeline, int requests)
        {
            string address = Address(norman);
            using var server = Start(_server, [.. UnderNormanRun(norman), "redis-server", "--port", $"{RedisPort}", "--bind", norman ? "0.0.0.0" : address,
                "--save", "", "--appendonly", "no", "--protected-mode", "no"]);
            try
            {
                // Ready when it answers: bounded, a probe every 50 ms for 20 s.
                for (int probe = 0; probe < 400 && !RunQuietly(_client, "redis-cli", "-h", address, "-p", $"{RedisPort}", "ping").Contains("PONG", StringComparison.Ordinal); probe++)
                {
                    Thread.Sleep(50);
                }
                string csv = Run(_client, "redis-benchmark", "-h", address, "-p", $"{RedisPort}", "-c", "50", "-n", requests.ToString(CultureInfo.InvariantCulture),
                    "-P", pipeline.ToString(CultureInfo.InvariantCulture), "-t", "set,get", "--csv");
                Console.Error.WriteLine($"  redis-benchmark -P {pipeline} against {(norman ? "Norman" : "the kernel")}:\n{csv.Trim()}");
                // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
                return [.. csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(line => line.Split(',').Select(f => f.Trim('"')).ToArray())
                    .Select(f => (f[0].ToLowerInvariant(), Number(f[1]), Number(f[4]) * 1e3, Number(f[6]) * 1e3))];
            }
            finally
            {
                server.Kill();
                server.WaitForExit();
            }
        }

        /// <summary>wrk's requests/s and latency against nginx in one process (<paramref name="workers"/> 0), or a master and that many workers.</summary>
        public (double RequestsPerSecond, double P50, double P99) Nginx(bool norman, int seconds, int workers)
        {
            string address = Address(norman);
            string root = Path.Combine(_directory, "nginx");
            Directory.CreateDirectory(Path.Combine(root, "site"));
            File.WriteAllText(Path.Combine(root, "site", "index.html"), "hello from a benchmark page\n");
            File.WriteAllText(Path.Combine(root, "nginx.conf"), $"daemon off; {(workers == 0 ? "master_process off;" : $"worker_processes {workers};")} error_log {root}/error.log; pid {root}/nginx.pid; " +
                "events { worker_connections 1024; } " +
                $"http {{ access_log off; sendfile on; client_body_temp_path {root}/body; proxy_temp_path {root}/proxy; fastcgi_temp_path {root}/fastcgi; " +
                $"uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi; server {{ listen {(norman ? "" : address + ":")}{NginxPort}; root {root}/site; }} }}\n");
            using var server = Start(_server, [.. UnderNormanRun(norman), "nginx", "-c", Path.Combine(root, "nginx.conf"), "-p", root]);
            try
            {
                string url = $"http://{address}:{NginxPort}/";
                for (int probe = 0; probe < 400 && !RunQuietly(_client, "curl", "-s", url).Contains("hello", StringComparison.Ordinal); probe++)
                {
                    Thread.Sleep(50);
                }
                Run(_client, "wrk", "-t1", "-c64", "-d1s", url); // warm-up
                string report = Run(_client, "wrk", "-t1", "-c64", $"-d{seconds}s", "--latency", url);
                Console.Error.WriteLine($"  wrk against nginx on {(norman ? "Norman" : "the kernel")}: {RequestsLine().Match(report).Value.Trim()}");
                if (report.Contains("Socket errors", StringComparison.Ordinal) || report.Contains("Non-2xx", StringComparison.Ordinal))
                {
                    Console.Error.WriteLine(report);
                }
                return (Number(RequestsLine().Match(report).Groups[1].Value), Percentile(report, "50%"), Percentile(report, "99%"));
            }
            finally
            {
                server.Kill(entireProcessTree: true); // the master and its workers
                server.WaitForExit();
            }
        }

        /// <summary>sockperf's ping-pong latency (it reports half the round trip), p50 and p99 in µs.</summary>
        public (double P50, double P99) Sockperf(bool norman, int seconds)
        {
            string address = Address(norman);
            using var server = Start(_server, [.. UnderNormanRun(norman), "sockperf", "server", "-i", norman ? "0.0.0.0" : address, "-p", $"{SockperfPort}"]);
            try
            {
                for (int line = 0; line < 20 && server.StandardOutput.ReadLine() is { } said && !said.Contains("block on socket", StringComparison.Ordinal); line++)
                {
                }
                string report = Run(_client, "sockperf", "ping-pong", "-i", address, "-p", $"{SockperfPort}", "-t", seconds.ToString(CultureInfo.InvariantCulture));
                double Percentile(string which) => Number(System.Text.RegularExpressions.Regex.Match(report, $@"percentile {which} =\s+([\d.]+)").Groups[1].Value);
                Console.Error.WriteLine($"  sockperf against {(norman ? "Norman" : "the kernel")}: p50 {Percentile("50.000")} µs, p99 {Percentile("99.000")} µs (half round trips)");
                return (Percentile("50.000"), Percentile("99.000"));
            }
            finally
            {
                server.Kill();
                server.WaitForExit();
            }
        }

        /// <summary>Bits per second iperf3 measured at the receiving end.</summary>
        public double Iperf3(bool norman, bool reverse, int seconds)
        {
            string address = Address(norman);
            using var server = Start(_server, [.. UnderNormanRun(norman), "iperf3", "-s", "-1", "-p", $"{IperfPort}", "--forceflush", .. norman ? Array.Empty<string>() : ["-B", address]]);
            try
            {
                for (int line = 0; line < 20 && server.StandardOutput.ReadLine() is { } said && !said.Contains("Server listening", StringComparison.Ordinal); line++)
                {
                }
                string json = Run(_client, ["iperf3", "-c", address, "-p", $"{IperfPort}", "-t", seconds.ToString(CultureInfo.InvariantCulture), "-J", .. reverse ? ["-R"] : Array.Empty<string>()]);
                double bits = JsonDocument.Parse(json).RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bits_per_second").GetDouble();
                Console.Error.WriteLine($"  iperf3 {(reverse ? "-R " : "")}against {(norman ? "Norman" : "the kernel")}: {bits / 1e9:F2} Gbit/s");
                return bits;
            }
            finally
            {
                if (!server.WaitForExit(TimeSpan.FromSeconds(10)))
                {
                    server.Kill();
                    server.WaitForExit();
                }
            }
        }

        private string RunQuietly(string ns, params string[] command)
        {
            try
            {
                return Run(ns, command);
            }
            catch (InvalidOperationException)
            {
                return "";
            }
        }

        private static double Number(string text) => double.Parse(text, CultureInfo.InvariantCulture);
    }
}
