using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Norman.Client;
using Norman.Core.Packets;
using Norman.Core.Protocol;
using Norman.Daemon;
using Norman.Daemon.Control;
using Norman.Daemon.Policy;

namespace Norman.Integration.Tests;

public sealed class MetricsTests
{
    /// <summary>Debian's python3 with python3-prometheus-client (./run-tests installs it), not whatever python3 is first on PATH.</summary>
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task The_Prometheus_endpoint_parses_with_the_official_parser_and_agrees_with_norman_stats()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-metrics-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        int port = FreePort();
        var daemon = NormanDaemon.Start(new DaemonOptions
        {
            SocketPath = Path.Combine(directory, "norman.sock"), LineRateBitsPerSecond = 0, Metrics = $"127.0.0.1:{port}",
        }, NullLog.Instance);
        try
        {
            daemon.Policy.Add(Chain.Ingress, FilterRuleParser.Words("udp dport 5000 count"));
            using var socket = new NormanUdpSocket(daemon.SocketPath);
            socket.Bind(5000);
            var buffer = new byte[2048];
            for (int i = 0; i < 7; i++)
            {
                daemon.Peer!.SendUdp(40000, 5000, "metrics"u8);
                socket.Receive(buffer, out _, TimeSpan.FromSeconds(5));
            }
            daemon.Peer!.SendUdp(40000, 5001, "to nobody"u8); // answered with port unreachable, not dropped
            Assert.True(SpinWait.SpinUntil(() => daemon.Engine.Counters.PortUnreachableSent == 1, TimeSpan.FromSeconds(5)));

            using var http = new HttpClient();
            string text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
            var metrics = Parse(text);
            var stats = JsonSerializer.Deserialize(await ApplicationProcessTests.RunNormanAsync("stats", "--json", "--socket", daemon.SocketPath),
                ControlJson.Default.StatsInfo)!;

            Assert.Equal(stats.Counters["port_rx_packets"], metrics["norman_port_rx_packets_total"]);
            Assert.Equal(8, metrics["norman_port_rx_packets_total"]);
            Assert.Equal(stats.Counters["port_unreachable_sent"], metrics["norman_port_unreachable_sent_total"]);
            Assert.Equal(stats.Counters["drop_bad_udp_checksum"], metrics["norman_drops_total{reason=\"bad_udp_checksum\"}"]);
            var mine = Assert.Single(stats.Sockets, s => s.LocalPort == 5000);
            Assert.Equal(7, mine.RxPackets);
            string labels = $"app=\"{mine.ProcessName}\",local_port=\"5000\",pid=\"{mine.Pid}\",protocol=\"udp\",uid=\"{mine.Uid}\"";
            Assert.Equal(7, metrics[$"norman_socket_received_packets_total{{{labels}}}"]);
            Assert.Equal(Assert.Single(stats.Rules).Packets, metrics["norman_rule_packets_total{chain=\"ingress\",handle=\"1\",rule=\"udp dport 5000 count\"}"]);
            Assert.Equal(7, Assert.Single(stats.Rules).Packets); // the 7 to port 5000, not the one to 5001
            Assert.Contains("norman_qos_class_sent_packets_total{class=\"default\"}", metrics.Keys);
            Assert.Equal(404, (int)(await http.GetAsync($"http://127.0.0.1:{port}/other")).StatusCode);
        }
        finally
        {
            await daemon.DisposeAsync();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_bad_metrics_address_stops_norman_up_with_what_to_write()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-metrics-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            var start = new ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in new[] { "up", "--socket", Path.Combine(directory, "n.sock"), "--metrics", "localhost" })
            {
                start.ArgumentList.Add(argument);
            }
            using var process = Process.Start(start)!;
            string output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            Assert.NotEqual(0, process.ExitCode);
            Assert.Contains("write it as 127.0.0.1:9469", output);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Every sample as "name{labels}" → value, read by prometheus_client's own text parser (labels sorted by name).</summary>
    private static Dictionary<string, long> Parse(string text)
    {
        const string script = """
            import sys, json
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(sys.stdin.read()):
                for s in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    out[s.name + ("{" + labels + "}" if labels else "")] = s.value
            print(json.dumps(out))
            """;
        var start = new ProcessStartInfo(Python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        using var process = Process.Start(start)!;
        process.StandardInput.Write(text);
        process.StandardInput.Close();
        string output = process.StandardOutput.ReadToEnd();
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"prometheus_client could not parse the exposition (is python3-prometheus-client installed? ./run-tests installs it): {errors}");
        return JsonSerializer.Deserialize<Dictionary<string, double>>(output)!.ToDictionary(p => p.Key, p => (long)p.Value);
    }

    /// <summary>--metrics 0.0.0.0:P serves every address (it failed with "The request is not supported").</summary>
    [Fact]
    public async Task Metrics_on_every_address_are_served_on_loopback_too()
    {
        int port = FreePort();
        await using var server = new Norman.Daemon.Observability.MetricsServer($"0.0.0.0:{port}", () => new StatsInfo());
        using var http = new HttpClient();
        string text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Contains("norman_", text);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
