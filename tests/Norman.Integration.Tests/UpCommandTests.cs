using Norman.Daemon;

namespace Norman.Integration.Tests;

/// <summary>`norman up` as a process: config file, flags over the file, errors that name the line.</summary>
public sealed class UpCommandTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"norman-up-{Guid.NewGuid():N}");

    public UpCommandTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Settings_come_from_the_config_file_and_a_flag_overrides_the_file()
    {
        string socket = Path.Combine(_directory, "n.sock");
        string config = Path.Combine(_directory, "norman.conf");
        File.WriteAllText(config, $"# test\nsocket = {socket}\naddress = 198.18.5.1/24   # trailing comment\nline-rate = 1G\n");
        using var daemon = AppProcess.Start("norman", socket, null, "up", "--config", config, "--line-rate", "2G");
        string banner = daemon.ReadLine();
        Assert.Contains($"control socket {socket}", banner);
        Assert.Contains("198.18.5.1/24", banner);
        Assert.Contains("line rate 2 Gbit/s", banner);
    }

    [Fact]
    public async Task A_bad_config_line_is_refused_with_its_file_and_line_number()
    {
        string config = Path.Combine(_directory, "bad.conf");
        File.WriteAllText(config, "address = 198.18.5.1/24\nlinerate = 1G\n");
        var (code, output) = await RunAsync("up", "--config", config);
        Assert.Equal(2, code);
        Assert.Contains($"{config}:2: unknown setting 'linerate'", output);

        File.WriteAllText(config, "line-rate = fast\n");
        (code, output) = await RunAsync("up", "--config", config);
        Assert.Equal(2, code);
        Assert.Contains($"{config}:1: bad value 'fast' for line-rate", output);

        File.WriteAllText(config, "conntrack-max = 0\n");
        (code, output) = await RunAsync("up", "--config", config);
        Assert.Equal(2, code);
        Assert.Contains($"{config}:1: bad value '0' for conntrack-max", output);
        Assert.Contains("use 1 to 67108864 flows", output);
    }

    [Fact]
    public void SIGTERM_stops_the_daemon_cleanly_and_its_clients_are_told()
    {
        string socketPath = Path.Combine(_directory, "n.sock");
        using var daemon = AppProcess.Start("norman", socketPath, null, "up", "--socket", socketPath);
        daemon.ReadLine();
        using var socket = new Norman.Client.NormanUdpSocket(socketPath);
        socket.Bind(5000);

        Host.Run("kill", "-TERM", daemon.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(daemon.Process.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(0, daemon.Process.ExitCode);
        Assert.False(File.Exists(socketPath), "the control socket was left behind");
        var error = Assert.Throws<Norman.Client.NormanDaemonUnavailableException>(() => socket.Receive(new byte[8], out _, TimeSpan.FromSeconds(10)));
        Assert.Contains(socketPath, error.Message);
    }

    /// <summary>
    /// The daemon killed with SIGKILL while an administrator adds rules: every rule it acknowledged is in force after the
    /// restart (saved before the answer, by temp-then-rename, so the file is never half-written); a client's next
    /// sends say the daemon went away, and Reconnect binds the same port and connection on the new daemon.
    /// </summary>
    [RootFact]
    public async Task A_daemon_killed_with_SIGKILL_restarts_with_every_acknowledged_rule_and_its_client_reconnects()
    {
        string socketPath = Path.Combine(_directory, "n.sock");
        string policyFile = Path.Combine(_directory, "policy.rules");
        string[] up = ["up", "--socket", socketPath, "--policy-file", policyFile];
        var daemon = AppProcess.Start("norman", socketPath, null, up);
        daemon.ReadLine();
        using var client = new Norman.Client.NormanUdpSocket(socketPath);
        client.Connect(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("198.18.0.2"), 7));
        int port = client.LocalPort;

        int acknowledged = 0;
        var adding = Task.Run(() =>
        {
            using var admin = Norman.Client.ControlChannel.Connect(socketPath);
            for (int rule = 1; rule <= 100_000; rule++)
            {
                admin.Call(new Norman.Core.Protocol.ControlRequest
                {
                    Op = Norman.Core.Protocol.ControlProtocol.Ops.FilterAdd, Chain = "ingress",
                    Rule = ["udp", "dport", rule.ToString(System.Globalization.CultureInfo.InvariantCulture), "drop"],
                });
                Volatile.Write(ref acknowledged, rule);
            }
        });
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref acknowledged) >= 50, TimeSpan.FromSeconds(30)), "no rules were acknowledged");
        daemon.KillHard();
        Assert.True(daemon.Process.WaitForExit(TimeSpan.FromSeconds(10)));
        await Assert.ThrowsAsync<Norman.Client.NormanDaemonUnavailableException>(() => adding);
        int acknowledgedBeforeTheKill = Volatile.Read(ref acknowledged);
        daemon.Dispose();

        // The client's sends notice within a millisecond (no system call per packet); the error says what to do.
        var lost = Assert.Throws<Norman.Client.NormanDaemonUnavailableException>(() =>
        {
            for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(10);)
            {
                client.TrySendTo("into a dead daemon"u8, Norman.Core.Packets.NetAddress.Parse("198.18.0.2"), 7);
            }
        });
        Assert.Contains("went away", lost.Message);
        Assert.Contains("Reconnect", lost.Message);

        using var restarted = AppProcess.Start("norman", socketPath, null, up);
        Assert.Contains($"control socket {socketPath}", restarted.ReadLine());
        var (code, listing) = await RunAsync("filter", "--socket", socketPath, "list", "--json");
        Assert.Equal(0, code);
        var rules = System.Text.Json.JsonSerializer.Deserialize(listing, Norman.Core.Protocol.ControlJson.Default.FilterInfo)!.Rules;
        // Every acknowledged rule, in order; at most one more (saved, its answer lost in the kill).
        Assert.InRange(rules.Count, acknowledgedBeforeTheKill, acknowledgedBeforeTheKill + 1);
        Assert.Equal(Enumerable.Range(1, rules.Count).Select(r => $"udp dport {r} drop"), rules.Select(r => r.Rule));

        client.Reconnect(TimeSpan.FromSeconds(10));
        Assert.Equal(port, client.LocalPort);
        Assert.True(client.TrySendTo("after the restart"u8, Norman.Core.Packets.NetAddress.Parse("198.18.0.2"), 7));
        using var observer = Norman.Client.ControlChannel.Connect(socketPath);
        Norman.Core.Protocol.SocketInfo? mine = null;
        Assert.True(SpinWait.SpinUntil(() =>
        {
            mine = observer.Call(new Norman.Core.Protocol.ControlRequest { Op = Norman.Core.Protocol.ControlProtocol.Ops.Sockets }).Sockets!.Single();
            return mine.TxPackets == 1;
        }, TimeSpan.FromSeconds(10)), "the reconnected socket's datagram did not leave");
        Assert.Equal((port, "198.18.0.2", 7, Environment.ProcessId), (mine!.LocalPort, mine.RemoteAddress, mine.RemotePort, mine.Pid));
    }

    [Fact]
    public async Task Up_help_documents_every_setting()
    {
        var (code, help) = await RunAsync("up", "--help");
        Assert.Equal(0, code);
        Assert.All(DaemonSettings.All, setting => Assert.Contains("--" + setting.Name, help));
        Assert.Contains("--config", help);
    }

    [Fact]
    public async Task A_second_daemon_on_the_same_socket_is_refused_clearly()
    {
        string socket = Path.Combine(_directory, "n.sock");
        using var first = AppProcess.Start("norman", socket, null, "up", "--socket", socket);
        first.ReadLine();
        var (code, output) = await RunAsync("up", "--socket", socket);
        Assert.Equal(1, code);
        Assert.Contains("Another Norman daemon is already listening", output);
    }

    private static async Task<(int Code, string Output)> RunAsync(params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        return (process.ExitCode, await output + await errors);
    }
}
