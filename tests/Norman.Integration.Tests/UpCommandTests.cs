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
    public void Address6_given_twice_gives_the_host_both_and_the_link_local_address_its_mac_makes()
    {
        string socket = Path.Combine(_directory, "n.sock");
        using var daemon = AppProcess.Start("norman", socket, null, "up", "--socket", socket, "--mac", "02:00:00:00:00:01",
            "--address6", "fd66::1/64", "--address6", "fd66:2::1/56");
        string banner = daemon.ReadLine();
        Assert.Contains("198.18.0.1/24, fd66::1/64, fd66:2::1/56, fe80::ff:fe00:1/64,", banner);
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

    [Fact]
    public async Task Up_never_deletes_a_file_that_is_not_a_socket()
    {
        string precious = Path.Combine(_directory, "norman.conf");
        File.WriteAllText(precious, "address = 198.18.5.1/24\n");
        var (code, output) = await RunAsync("up", "--socket", precious);
        Assert.Equal(1, code);
        Assert.Contains($"{precious} exists and is not a socket", output);
        Assert.Equal("address = 198.18.5.1/24\n", File.ReadAllText(precious));
    }

    [Theory]
    [InlineData(2, "--slots", "1000", "power of two")]
    [InlineData(2, "--cpu", "4096", "this machine's CPUs")]
    [InlineData(2, "--mac", "ff:ff:ff:ff:ff:ff", "unicast")]
    [InlineData(2, "--mac", "00:00:00:00:00:00", "unicast")]
    [InlineData(2, "--mac", "01:00:5e:00:00:01", "unicast")]
    [InlineData(1, "--peer", "10.9.9.2", "not a host on this host's subnet")]
    [InlineData(1, "--gateway", "10.9.9.1", "is not on this host's subnet")]
    public async Task Settings_that_cannot_work_are_refused_at_start(int status, string option, string value, string message)
    {
        var (code, output) = await RunAsync("up", "--socket", Path.Combine(_directory, "n.sock"), option, value);
        Assert.Equal(status, code);
        Assert.Contains(message, output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task Sockets_get_the_slots_the_daemon_was_started_with()
    {
        string socketPath = Path.Combine(_directory, "n.sock");
        using var daemon = AppProcess.Start("norman", socketPath, null, "up", "--socket", socketPath, "--slots", "256");
        daemon.ReadLine();
        using var udp = new Norman.Client.NormanUdpSocket(socketPath);
        udp.Bind(5000);
        using var listener = new Norman.Client.NormanTcpListener(5001, socketPath);
        using var control = Norman.Client.ControlChannel.Connect(socketPath);
        var sockets = control.Call(new Norman.Core.Protocol.ControlRequest { Op = Norman.Core.Protocol.ControlProtocol.Ops.Sockets }).Sockets!;
        Assert.Equal([256, 256], sockets.Select(s => s.SlotCount));
        await Task.CompletedTask;
    }

    /// <summary>
    /// The README says the virtual wire needs no privileges: an ordinary user's `norman up` cannot write /run/norman,
    /// so its socket goes to the user's runtime directory, where the same user's commands look without being told.
    /// </summary>
    [RootFact]
    public async Task An_ordinary_users_daemon_listens_in_their_runtime_directory_and_their_commands_find_it()
    {
        string runtime = Path.Combine(_directory, "run-user");
        Directory.CreateDirectory(runtime);
        Host.Run("chown", "65534:65534", runtime, _directory);
        using var daemon = StartAsNobody(runtime, "up");
        string banner = daemon.StandardOutput.ReadLine() ?? daemon.StandardError.ReadToEnd();
        Assert.Contains($"control socket {runtime}/norman/norman.sock", banner);
        Assert.Contains("runtime directory", daemon.StandardOutput.ReadLine());
        using var ss = StartAsNobody(runtime, "ss");
        string errors = await ss.StandardError.ReadToEndAsync();
        await ss.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.True(ss.ExitCode == 0, errors);
        daemon.Kill();
        await daemon.WaitForExitAsync();

        // Without a runtime directory, the refusal says what to do, in one line.
        using var lost = StartAsNobody(null, "up");
        string refusal = await lost.StandardError.ReadToEndAsync();
        await lost.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(1, lost.ExitCode);
        // (/run/norman may exist, root's, or not: either way nobody may write there)
        Assert.StartsWith("norman up: Cannot ", refusal);
        Assert.Contains("/run/norman", refusal);
        Assert.Contains("give --socket a path you may write", refusal);
        Assert.Single(refusal.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static System.Diagnostics.Process StartAsNobody(string? runtimeDirectory, params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("setpriv")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var argument in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "--", AppProcess.BesideTests("norman") }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment.Remove("NORMAN_SOCKET");
        start.Environment.Remove("XDG_RUNTIME_DIR");
        if (runtimeDirectory is not null)
        {
            start.Environment["XDG_RUNTIME_DIR"] = runtimeDirectory;
        }
        start.Environment["HOME"] = "/tmp";
        start.Environment["DOTNET_CLI_HOME"] = "/tmp";
        return System.Diagnostics.Process.Start(start)!;
    }

    /// <summary>
    /// SIGTERM while the daemon compiles a long capture filter: it stops within the compile's bound, exit 0, and removes its
    /// socket (the compile ran on the control loop, and the socket file was left behind).
    /// </summary>
    [Fact]
    public async Task SIGTERM_during_a_long_filter_compile_stops_the_daemon_cleanly()
    {
        string socketPath = Path.Combine(_directory, "n.sock");
        using var daemon = AppProcess.Start("norman", socketPath, null, "up", "--socket", socketPath, "-v");
        daemon.ReadLine();
        string expression = string.Join(" or ", Enumerable.Range(1, 150).Select(i => $"portrange {i}-{i + 1}"))[..2000];
        expression = expression[..expression.LastIndexOf(" or ", StringComparison.Ordinal)];
        using var capture = AppProcess.Start("norman", socketPath, null, "capture", "-c", "1", expression);
        // The daemon logs the compile as it starts it: SIGTERM then, while libpcap works (about a second for this one).
        var compiling = Task.Run(() =>
        {
            string? line;
            while ((line = daemon.Process.StandardError.ReadLine()) is not null && !line.Contains("filter expression for", StringComparison.Ordinal))
            {
            }
            return line;
        });
        Assert.NotNull(await compiling.WaitAsync(TimeSpan.FromSeconds(30)));
        Host.Run("kill", "-TERM", daemon.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(daemon.Process.WaitForExit(TimeSpan.FromSeconds(20)), "the daemon did not stop within 20 s of SIGTERM");
        Assert.Equal(0, daemon.Process.ExitCode);
        Assert.False(File.Exists(socketPath), "the control socket was left behind");
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
