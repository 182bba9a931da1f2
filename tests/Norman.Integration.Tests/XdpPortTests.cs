using System.Diagnostics;
using System.Globalization;
using System.Net;
using Norman.Client;

namespace Norman.Integration.Tests;

/// <summary>
/// The XDP port as an administrator meets it on a host: the daemon runs in a test host of its own (a namespace whose
/// kernel has an address on the veth), the peer in another. What the kernel had before Norman came, it keeps while
/// Norman runs and after it stops or is killed; a program that is not Norman's is never replaced; and, sharing the
/// kernel's address, each port has one owner, the kernel or Norman. (The port's other behaviour — ping, UDP, TCP,
/// Kestrel, filter, capture, conntrack over XDP — is RealWireTests' on <see cref="XdpWireTests"/>.)
/// </summary>
public sealed class XdpPortTests : IDisposable
{
    private const string KernelAddress = "198.18.7.1";
    private const string NormanAddress = "198.18.7.5";
    private const string PeerAddress = "198.18.7.2";
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"norman-xdp-{Guid.NewGuid():N}");
    private TestNamespace _host = null!; // made by each test: a skipped test (not root) makes none
    private TestNamespace _peer = null!;
    private readonly List<Process> _daemons = new();

    public XdpPortTests() => Directory.CreateDirectory(_directory);

    private string SocketPath => Path.Combine(_directory, "n.sock");

    public void Dispose()
    {
        foreach (var daemon in _daemons.Where(d => !d.HasExited))
        {
            Host.Run("kill", "-KILL", daemon.Id.ToString(CultureInfo.InvariantCulture));
            daemon.WaitForExit(TimeSpan.FromSeconds(10));
        }
        _host?.Dispose();
        _peer?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Two test hosts joined by a veth: the kernel of the first has 198.18.7.1 on "xh", the peer 198.18.7.2 on "xp".</summary>
    private void BuildHosts(int queues = 1)
    {
        _host = new TestNamespace("xdph");
        _peer = new TestNamespace("xdpp");
        string count = queues.ToString(CultureInfo.InvariantCulture);
        _host.Run("ip", "link", "add", "xh", "numtxqueues", count, "numrxqueues", count, "type", "veth",
            "peer", "name", "xp", "netns", _peer.Name, "numtxqueues", count, "numrxqueues", count);
        _host.Run("ip", "addr", "add", $"{KernelAddress}/24", "dev", "xh");
        _host.Run("ip", "link", "set", "xh", "up");
        _peer.Run("ip", "addr", "add", $"{PeerAddress}/24", "dev", "xp");
        _peer.Run("ip", "link", "set", "xp", "up");
        // Whole checksums from the peer: XDP hands Norman no word of a checksum left to offload (see XdpWireTests).
        _peer.Run("ethtool", "-K", "xp", "tx", "off", "tso", "off", "gso", "off");
    }

    private Process StartDaemon(params string[] arguments)
    {
        var daemon = _host.Start([AppProcess.BesideTests("norman"), "up", "--socket", SocketPath, .. arguments]);
        _daemons.Add(daemon);
        var banner = daemon.StandardOutput.ReadLineAsync();
        Assert.True(banner.Wait(TimeSpan.FromSeconds(30)) && banner.Result?.Contains("control socket", StringComparison.Ordinal) == true,
            $"the daemon did not start: {(daemon.HasExited ? daemon.StandardError.ReadToEnd() : "(no banner)")}");
        return daemon;
    }

    /// <summary>Runs `norman up` to a failure it must report: its exit code and what it said.</summary>
    private (int ExitCode, string Errors) FailedStart(params string[] arguments)
    {
        var (code, _, errors) = _host.Try(null, [AppProcess.BesideTests("norman"), "up", "--socket", Path.Combine(_directory, "failed.sock"), .. arguments]);
        return (code, errors);
    }

    private string XdpOnTheInterface() => _host.Run("ip", "link", "show", "xh");

    private static void Stop(Process daemon, string signal)
    {
        Host.Run("kill", "-" + signal, daemon.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(20)), $"the daemon did not stop on SIG{signal}");
    }

    /// <summary>The kernel releases a closed link's program from a work queue: gone within milliseconds, waited for a few seconds at most.</summary>
    private void AssertProgramGone()
    {
        var clock = Stopwatch.StartNew();
        while (XdpOnTheInterface().Contains("prog/xdp", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            Thread.Sleep(20); // polling the kernel's state, bounded
        }
        Assert.DoesNotContain("prog/xdp", XdpOnTheInterface());
    }

    private bool Answers(string address) => _peer.Try(null, "ping", "-c", "1", "-W", "2", address).ExitCode == 0;

    [NetnsFact]
    public void Stopped_or_killed_Norman_leaves_no_program_on_the_interface_and_the_kernel_keeps_its_traffic_throughout()
    {
        BuildHosts();
        Assert.True(Answers(KernelAddress));
        foreach (var signal in new[] { "TERM", "KILL" })
        {
            var daemon = StartDaemon("--port", "xdp:xh", "--address", $"{NormanAddress}/24");
            Assert.Contains("norman_steer", XdpOnTheInterface());
            Assert.True(Answers(NormanAddress), "Norman does not answer on its own address");
            Assert.True(Answers(KernelAddress), "with Norman on the interface, the kernel no longer answers for its own address");

            Stop(daemon, signal);

            AssertProgramGone();
            Assert.True(Answers(KernelAddress), $"after SIG{signal}, the kernel no longer answers");
            Assert.False(Answers(NormanAddress), $"after SIG{signal}, something still answers for Norman's address");
        }
    }

    private static void AssertLogSays(Process daemon, string text) => Host.WaitForError(daemon, text, TimeSpan.FromSeconds(10));

    [NetnsFact]
    public void Taken_down_brought_up_and_deleted_the_interface_is_reported_each_time_and_traffic_resumes_after_up()
    {
        BuildHosts();
        var daemon = StartDaemon("--port", "xdp:xh", "--address", $"{NormanAddress}/24");
        Assert.True(Answers(NormanAddress));

        _host.Run("ip", "link", "set", "xh", "down");
        AssertLogSays(daemon, "xh is down: nothing moves on it until it is up");
        _host.Run("ip", "link", "set", "xh", "up");
        AssertLogSays(daemon, "xh is up again");
        Assert.True(Answers(NormanAddress), "after the interface came back up, Norman no longer answers");

        _host.Run("ip", "link", "del", "xh");
        AssertLogSays(daemon, "xh is gone (deleted)");
        Assert.Contains("port: xdp:xh", _host.Run(AppProcess.BesideTests("norman"), "stats", "--socket", SocketPath));
        Stop(daemon, "TERM");
        Assert.True(daemon.ExitCode == 0, $"the stop failed (exit {daemon.ExitCode}): {daemon.StandardError.ReadToEnd()}");
    }

    [NetnsFact]
    public void A_second_daemon_on_the_interface_is_refused_and_the_first_keeps_its_program_and_its_traffic()
    {
        BuildHosts();
        var first = StartDaemon("--port", "xdp:xh", "--address", $"{NormanAddress}/24");
        string program = XdpOnTheInterface();

        var (code, errors) = FailedStart("--port", "xdp:xh", "--address", "198.18.7.6/24");

        Assert.NotEqual(0, code);
        Assert.Contains("already has an XDP program", errors);
        Assert.Contains("does not replace", errors);
        Assert.Equal(program, XdpOnTheInterface());
        Assert.True(Answers(NormanAddress));
        Stop(first, "TERM");
    }

    [NetnsFact]
    public void On_two_queues_each_has_its_socket_and_flows_arriving_on_either_are_served()
    {
        BuildHosts(queues: 2);
        // The peer's kernel spreads its flows over both of its transmit queues, so they arrive on both of ours.
        StartDaemon("--port", "xdp:xh", "--address", $"{NormanAddress}/24");
        using var echo = AppProcess.Start("echo-server", SocketPath, null, "7000");
        echo.ReadLine();
        string stats = _host.Run(AppProcess.BesideTests("norman"), "stats", "--socket", SocketPath);
        Assert.Contains("queues 0,1", stats);

        for (int flow = 0; flow < 16; flow++)
        {
            string line = $"flow {flow}\n";
            var (code, output, errors) = _peer.Try(line, "socat", "-T", "3", "-", $"UDP:{NormanAddress}:7000,sourceport={41000 + flow}");
            Assert.True(code == 0 && output == line, $"flow {flow} (source port {41000 + flow}) was not echoed: {errors}");
        }
        var perQueue = _host.Run("ethtool", "-S", "xh");
        Assert.True(RxQueuePackets(perQueue, 0) > 0 && RxQueuePackets(perQueue, 1) > 0,
            $"the flows did not arrive on both queues, so this did not test the second socket:\n{perQueue}");
    }

    /// <summary>A veth's per-queue receive count, from `ethtool -S` ("rx_queue_N_xdp_packets" where XDP runs, else "rx_queue_N_packets").</summary>
    private static long RxQueuePackets(string statistics, int queue) =>
        statistics.Split('\n').Select(line => line.Trim().Split(':'))
            .Where(parts => parts.Length == 2 && (parts[0] == $"rx_queue_{queue}_xdp_packets" || parts[0] == $"rx_queue_{queue}_packets"))
            .Sum(parts => long.Parse(parts[1].Trim(), CultureInfo.InvariantCulture));

    [NetnsFact]
    public void An_interface_without_native_XDP_gets_the_generic_mode_and_says_so()
    {
        BuildHosts();
        _host.Run("ip", "link", "add", "xd", "type", "bridge"); // a bridge has no XDP of its own
        _host.Run("ip", "link", "set", "xd", "up");
        var daemon = _host.Start([AppProcess.BesideTests("norman"), "up", "--socket", SocketPath, "--port", "xdp:xd", "--address", $"{NormanAddress}/24"]);
        _daemons.Add(daemon);
        var banner = daemon.StandardOutput.ReadLineAsync();
        Assert.True(banner.Wait(TimeSpan.FromSeconds(30)), "the daemon said nothing");
        Assert.Contains("xdp:xd (generic, copy, queue 0)", banner.Result);
        Assert.Contains("xdpgeneric", _host.Run("ip", "link", "show", "xd"));
        Stop(daemon, "TERM");
    }

    [NetnsFact]
    public void Each_bad_start_says_what_is_wrong_and_leaves_nothing_attached()
    {
        BuildHosts();
        var cases = new (string[] Arguments, string Says)[]
        {
            (["--port", "xdp:nosuch0", "--address", $"{NormanAddress}/24"], "There is no interface 'nosuch0'"),
            (["--port", "xdp:xh:3", "--address", $"{NormanAddress}/24"], "there is no queue 3"),
            (["--port", "xdp:xh:x", "--address", $"{NormanAddress}/24"], "is not a list of queues"),
            (["--port", "xdp:xh", "--address", $"{KernelAddress}/24"], "is the kernel's address on xh"),
            (["--port", "xdp:xh", "--address", $"{NormanAddress}/24", "--mac", "02:00:00:00:00:99"], "uses xh's own MAC"),
            (["--port", "afpacket:xh", "--share-address"], "--share-address is for an xdp port"),
        };
        foreach (var (arguments, says) in cases)
        {
            var (code, errors) = FailedStart(arguments);
            Assert.True(code == 1, $"`norman up {string.Join(' ', arguments)}` exited {code}: {errors}");
            Assert.Contains(says, errors);
        }
        _host.Run("ip", "link", "set", "xh", "mtu", "4000");
        var (mtuCode, mtuErrors) = FailedStart("--port", "xdp:xh", "--address", $"{NormanAddress}/24");
        Assert.True(mtuCode == 1, mtuErrors);
        Assert.Contains("MTU is 4000", mtuErrors);
        Assert.DoesNotContain("prog/xdp", XdpOnTheInterface());
    }

    [NetnsFact]
    public void Sharing_the_kernels_address_the_kernel_keeps_ping_and_its_listener_while_Norman_serves_UDP_TCP_and_Kestrel_on_its_ports()
    {
        BuildHosts();
        var kernelListener = _host.StartAndWaitFor("listening on", "socat", "-d", "-d", "TCP-LISTEN:8080,fork,reuseaddr", "SYSTEM:echo kernel-here");
        var daemon = StartDaemon("--port", "xdp:xh", "--share-address");
        using var udpEcho = AppProcess.Start("echo-server", SocketPath, null, "7000");
        udpEcho.ReadLine();
        using var tcpEcho = AppProcess.Start("echo-server", SocketPath, null, "7001", "--tcp");
        tcpEcho.ReadLine();
        using var web = AppProcess.Start("webapp", SocketPath, null, "--urls", "http://0.0.0.0:8081");
        Assert.StartsWith("webapp: listening on http://0.0.0.0:8081", web.ReadLine(60));

        Assert.True(Answers(KernelAddress), "the kernel no longer answers ping for its address");
        Assert.Equal("kernel-here\n", _peer.Try(null, "socat", "-T", "5", "-", $"TCP:{KernelAddress}:8080").Output);
        // Norman's next hops are the kernel's: with the kernel's table emptied, Norman's answer waits for the kernel to ask.
        _host.Run("ip", "neigh", "flush", "dev", "xh");
        Assert.Equal("udp to Norman\n", _peer.Try("udp to Norman\n", "socat", "-T", "5", "-", $"UDP:{KernelAddress}:7000").Output);
        Assert.Equal("tcp to Norman\n", _peer.Try("tcp to Norman\n", "socat", "-T", "5", "-", $"TCP:{KernelAddress}:7001").Output);
        var (code, page, errors) = _peer.Try(null, "curl", "-sS", "--max-time", "20", $"http://{KernelAddress}:8081/");
        Assert.True(code == 0, errors);
        Assert.Equal("Hello from ASP.NET Core on Norman\n", page);
        Stop(daemon, "TERM");
        Assert.False(kernelListener.HasExited);
    }

    [NetnsFact]
    public void Sharing_the_kernels_address_a_port_the_kernel_holds_cannot_be_bound_through_Norman_and_the_reverse()
    {
        BuildHosts();
        _host.StartAndWaitFor("listening on", "socat", "-d", "-d", "UDP-LISTEN:7100", "-");
        StartDaemon("--port", "xdp:xh", "--share-address");

        using var refused = new NormanUdpSocket(SocketPath);
        var error = Assert.Throws<NormanException>(() => refused.Bind(7100));
        Assert.Equal("EADDRINUSE", error.Code);
        Assert.Contains("kernel's stack", error.Message);

        using var held = new NormanUdpSocket(SocketPath);
        held.Bind(7101);
        var (code, _, errors) = _host.Try(null, "socat", "-T", "1", "UDP-LISTEN:7101", "-");
        Assert.NotEqual(0, code);
        Assert.Contains("Address already in use", errors);
        // One owner, seen from both sides: the kernel's ss shows the port held by the daemon, Norman's by the application.
        Assert.Contains("norman", _host.Run("ss", "-lunp", "sport = :7101"));
        string both = _host.Run(AppProcess.BesideTests("norman"), "ss", "-lun", "--kernel", "--socket", SocketPath, "sport = :7101");
        Assert.True(both.Split('\n').Count(line => line.Contains(":7101", StringComparison.Ordinal)) == 1, $"norman ss --kernel lists 7101 more than once:\n{both}");
        using var ephemeral = new NormanUdpSocket(SocketPath);
        ephemeral.Bind(0);
        Assert.Contains($":{ephemeral.LocalPort}", _host.Run("ss", "-lun"));

        held.Dispose();
        var clock = Stopwatch.StartNew();
        while (_host.Run("ss", "-lun", "sport = :7101").Contains(":7101", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(20); // the daemon closes the socket when it sees the connection go: polled, bounded
        }
        var (again, _, againErrors) = _host.Try(null, "timeout", "1", "socat", "UDP-LISTEN:7101", "-");
        Assert.True(again == 124, $"the kernel could not bind 7101 once Norman's socket closed: {againErrors}");
    }
}
