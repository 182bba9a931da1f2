using System.Diagnostics;
using System.Text.Json;
using Norman.Core.Protocol;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Integration.Tests;

/// <summary>The acceptance of the foundation: real application processes on a daemon's virtual wire.</summary>
[Collection(RunsAlone.Name)]
public sealed class ApplicationProcessTests(Xunit.Abstractions.ITestOutputHelper output) : DaemonTest
{
    /// <summary>nobody and nogroup on Debian (65534): numeric, since setpriv does not look a group up by a user name.</summary>
    private const string NobodyUid = "65534";

    [Fact]
    public void An_echo_server_process_gets_the_peers_datagrams_and_its_replies_reach_the_peer_byte_for_byte()
    {
        using var echo = Daemon.Start("echo-server", "5000");
        Assert.Contains("listening on udp 0.0.0.0:5000", echo.ReadLine());
        var random = new Random(5000);
        foreach (int size in new[] { 0, 1, 64, 512, 1000, 1472 })
        {
            var payload = new byte[size];
            random.NextBytes(payload);
            Daemon.Peer.SendUdp(40000, 5000, payload);
            var reply = Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10));
            Assert.NotNull(reply);
            Assert.Equal(payload, reply.Payload);
            Assert.Equal(5000, reply.SourcePort);
            Assert.Equal(40000, reply.DestinationPort);
        }
    }

    [Fact]
    public void Two_applications_each_get_only_their_own_port_and_a_second_bind_is_refused_clearly()
    {
        using var first = Daemon.Start("echo-server", "5000");
        using var second = Daemon.Start("echo-server", "5001");
        first.ReadLine();
        second.ReadLine();
        for (int i = 0; i < 50; i++)
        {
            Daemon.Peer.SendUdp(40000, (ushort)(5000 + i % 2), BitConverter.GetBytes(5000 + i % 2));
        }
        for (int i = 0; i < 50; i++)
        {
            var reply = Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10));
            Assert.NotNull(reply);
            Assert.Equal(reply.SourcePort, BitConverter.ToInt32(reply.Payload));
        }

        using var intruder = Daemon.Start("norman-testapp", "bind", "5000");
        string refusal = intruder.ReadLine();
        Assert.StartsWith("error EADDRINUSE", refusal);
        Assert.Contains("echo-server", refusal);
        Assert.Contains($"pid {first.Pid}", refusal);
    }

    [Fact]
    public async Task Norman_ss_lp_names_each_listening_process_by_pid_and_its_json_parses()
    {
        using var echo = Daemon.Start("echo-server", "5000");
        using var database = Daemon.Start("kvdb", "6379");
        echo.ReadLine();
        database.ReadLine();

        string table = await RunNormanAsync("ss", "-lpn", "--socket", Daemon.SocketPath);
        Assert.Contains($"users:((\"echo-server\",pid={echo.Pid}))", table);
        Assert.Contains($"users:((\"kvdb\",pid={database.Pid}))", table);
        Assert.Matches(@"udp\s+UNCONN\s+0\s+0\s+0\.0\.0\.0:5000\s", table);

        string filtered = await RunNormanAsync("ss", "-lpn", "--socket", Daemon.SocketPath, "sport", "=", ":6379");
        Assert.Contains("kvdb", filtered);
        Assert.DoesNotContain("echo-server", filtered);

        var sockets = JsonSerializer.Deserialize(await RunNormanAsync("ss", "-la", "--json", "--socket", Daemon.SocketPath), ControlJson.Default.ListSocketInfo)!;
        Assert.Contains(sockets, s => s.LocalPort == 5000 && s.Pid == echo.Pid && s.ProcessName == "echo-server");
        Assert.Contains(sockets, s => s.LocalPort == 6379 && s.Pid == database.Pid && s.ProcessName == "kvdb");
    }

    [Fact]
    public async Task Norman_ss_i_shows_each_sockets_pipes_wakeups_last_activity_and_class()
    {
        using var echo = Daemon.Start("echo-server", "5000");
        echo.ReadLine();
        string idle = await RunNormanAsync("ss", "-lni", "--socket", Daemon.SocketPath);
        Assert.Matches(@"\tpipe rx:0/1024 tx:0/1024 slot:2048B wakeups:0 last_rx:never last_tx:never class:-", idle);

        Daemon.Peer.SendUdp(40000, 5000, "hello"u8);
        Assert.NotNull(Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(5))); // echoed: the socket received and sent
        string busy = await RunNormanAsync("ss", "-lni", "--socket", Daemon.SocketPath);
        Assert.Matches(@"udp\s+UNCONN.*0\.0\.0\.0:5000.*\n\tpipe rx:0/1024 tx:0/1024 slot:2048B wakeups:1 last_rx:\d+ms ago last_tx:\d+ms ago class:default", busy);
    }

    [Fact]
    public async Task Norman_ss_kernel_shows_a_kernel_socket_beside_a_norman_socket_with_the_path_each_takes()
    {
        using var echo = Daemon.Start("echo-server", "5000");
        echo.ReadLine();
        using var kernelSocket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        kernelSocket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        int kernelPort = ((System.Net.IPEndPoint)kernelSocket.LocalEndPoint!).Port;

        string table = await RunNormanAsync("ss", "-lpn", "--kernel", "--socket", Daemon.SocketPath);
        Assert.Matches(@"Path\s+Netid\s+State", table);
        Assert.Matches($@"norman\s+udp\s+UNCONN\s+0\s+0\s+0\.0\.0\.0:5000\s.*\(\(""echo-server"",pid={echo.Pid}\)\)", table);
        Assert.Matches($@"kernel\s+udp\s+UNCONN\s+0\s+0\s+127\.0\.0\.1:{kernelPort}\s.*pid={Environment.ProcessId}\)", table);

        // The same filter on both stacks: who holds port 5000? Only Norman's echo server.
        string filtered = await RunNormanAsync("ss", "-lpn", "--kernel", "--socket", Daemon.SocketPath, "sport", "=", ":5000");
        Assert.Contains("echo-server", filtered);
        Assert.DoesNotContain($":{kernelPort}", filtered);

        var sockets = JsonSerializer.Deserialize(await RunNormanAsync("ss", "-la", "--kernel", "--json", "--socket", Daemon.SocketPath), ControlJson.Default.ListSocketInfo)!;
        Assert.Contains(sockets, s => s.Path == "kernel" && s.LocalPort == kernelPort && s.Protocol == "udp");
        Assert.Contains(sockets, s => s.Path == "norman" && s.LocalPort == 5000);
    }

    [Fact]
    public void A_killed_application_frees_its_port_within_a_second_and_the_daemon_its_memory()
    {
        var baseline = DaemonResources.Measure();
        using var victim = Daemon.Start("echo-server", "5000");
        victim.ReadLine();
        Assert.True(DaemonResources.Measure().Memfds > baseline.Memfds);

        victim.KillHard();
        var killedAt = Stopwatch.StartNew();
        Assert.True(WaitFor(() => Daemon.Daemon.Control.Sockets.Count == 0));
        Assert.True(killedAt.Elapsed < TimeSpan.FromSeconds(1), $"the port was held {killedAt.Elapsed} after the kill");
        using var successor = Daemon.Start("norman-testapp", "bind", "5000");
        Assert.Equal("bound 5000", successor.ReadLine());
        successor.Dispose();
        Assert.True(WaitFor(() => DaemonResources.Measure() == baseline && Daemon.Daemon.Control.Sockets.Count == 0),
            $"daemon resources {DaemonResources.Measure()} did not return to {baseline}");
    }

    [RootFact]
    public void A_port_below_1024_is_refused_to_an_unprivileged_user()
    {
        using var nobody = AppProcess.Start("norman-testapp", Daemon.SocketPath, NobodyUid, "bind", "80");
        string line = nobody.ReadLine();
        Assert.StartsWith("error EACCES", line);
        Assert.Contains("port 80", line);

        using var unprivilegedPort = AppProcess.Start("norman-testapp", Daemon.SocketPath, NobodyUid, "bind", "8080");
        Assert.Equal("bound 8080", unprivilegedPort.ReadLine());

        using var root = Daemon.Start("norman-testapp", "bind", "80");
        Assert.Equal("bound 80", root.ReadLine());
    }

    /// <summary>
    /// Item 1 of the hardening issue: a client process that, for four million rounds, writes adversarial values into
    /// every index, length and packet byte of its pipes, posts noise and forged packets and rewrites honest ones after
    /// posting them. The daemon keeps running, an echo server beside it loses nothing, and not one packet leaves that
    /// anti-spoofing (source address and port) or the policy (egress `udp dport 666 drop`) would refuse.
    /// </summary>
    [Fact]
    public async Task A_client_attacking_its_own_pipes_is_counted_by_reason_sends_nothing_refusable_and_harms_no_one()
    {
        Daemon.Daemon.Policy.Add(global::Norman.Daemon.Policy.Chain.Egress, ["udp", "dport", "666", "drop"]);
        using var echo = Daemon.Start("echo-server", "5000");
        echo.ReadLine();
        using var hostile = Daemon.Start("norman-testapp", "hostile", "6666", "4000000");
        Assert.Equal("bound 6666", hostile.ReadLine());
        var done = Task.Run(() => hostile.ReadLine(120));
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // The echo server is served in lockstep all the while: every request answered, in order.
        int exchanged = 0;
        var echoed = new List<PeerDatagram>();
        var others = new List<PeerDatagram>();
        while (exchanged < 500 || !done.IsCompleted)
        {
            Daemon.Peer.SendUdp(40000, 5000, BitConverter.GetBytes(exchanged));
            PeerDatagram? reply;
            while ((reply = Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10))) is { SourcePort: not 5000 })
            {
                others.Add(reply);
            }
            Assert.NotNull(reply);
            Assert.Equal(exchanged, BitConverter.ToInt32(reply.Payload));
            exchanged++;
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(150), $"the hostile client never finished ({exchanged} echo round trips meanwhile)");
        }
        string report = await done;
        Assert.StartsWith("done 4000000", report);
        Assert.DoesNotContain("never taken", report);
        while (Daemon.Peer.TakeDatagram(TimeSpan.FromMilliseconds(500)) is { } late)
        {
            others.Add(late);
        }

        // What left from the hostile socket was what it may send: its own address and port, not to port 666; and
        // of the datagrams whose length it flipped while the daemon took them, only its own bytes (0xA5) — never a
        // tail of whatever the dataplane's buffer held before.
        Assert.All(others, d =>
        {
            Assert.Equal(DaemonFixture.HostAddress, d.Source);
            Assert.Equal(6666, d.SourcePort);
            Assert.NotEqual(666, d.DestinationPort);
        });
        var flipped = others.Where(d => d.Payload.Length == 300).ToList();
        Assert.NotEmpty(flipped);
        Assert.All(flipped, d => Assert.True(d.Payload.All(b => b == 0xA5), "a flipped datagram carried bytes its slot never held"));
        var counters = Daemon.Daemon.Engine.Counters;
        var reasons = new[] { DropReason.TxCorruptIndex, DropReason.TxCorruptLength, DropReason.TxMalformed, DropReason.TxSpoofedSource, DropReason.FilteredEgress };
        Assert.All(reasons, r => Assert.True(counters.Drops(r) > 0, $"nothing counted as {DropReasons.Name(r)}"));
        var echoSocket = Daemon.Daemon.Control.Sockets.Snapshot().Single(s => s.LocalPort == 5000);
        Assert.DoesNotContain(echoSocket.Pipe.Counters.DropSnapshot(), d => d.Value > 0);
        Assert.Null(Daemon.Daemon.DataplaneFailure);
        output.WriteLine($"hostile client: {report}");
        output.WriteLine($"meanwhile {exchanged} echo round trips, none lost; {others.Count} datagrams left the hostile socket, all its own " +
            $"({flipped.Count} of them taken while their length flipped, each with its own bytes only); refused: " +
            string.Join(", ", reasons.Select(r => $"{DropReasons.Name(r)} {counters.Drops(r)}")));
    }

    [Fact]
    public void A_forged_source_port_is_dropped_and_counted_while_the_honest_datagram_leaves()
    {
        using var forger = Daemon.Start("norman-testapp", "forge", "5000", "53");
        forger.ReadLine();
        var honest = Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10));
        Assert.NotNull(honest);
        Assert.Equal(5000, honest.SourcePort);
        Assert.Null(Daemon.Peer.TakeDatagram(TimeSpan.FromMilliseconds(200)));
        Assert.Equal(1, Daemon.Daemon.Engine.Counters.Drops(DropReason.TxSpoofedSource));
    }

    internal static async Task<string> RunNormanAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        Assert.True(process.ExitCode == 0, $"norman {string.Join(' ', arguments)} exited {process.ExitCode}: {await errors}");
        return await output;
    }

    /// <summary>Polls a condition until it holds or five seconds pass (the daemon releases asynchronously).</summary>
    internal static bool WaitFor(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            if (condition())
            {
                return true;
            }
            Thread.Yield();
        }
        return condition();
    }
}
