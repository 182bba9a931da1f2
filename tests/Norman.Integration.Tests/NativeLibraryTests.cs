using System.Text;
using Norman.Daemon;
using Xunit.Abstractions;

namespace Norman.Integration.Tests;

/// <summary>
/// libnorman from C and Python (issue 18's first part): programs built the way a user builds them, against the
/// published library and its header, on a daemon's virtual wire; the peer is the wire's simulated host.
/// </summary>
public sealed class NativeLibraryTests : DaemonTest
{
    private readonly string _build = Directory.CreateTempSubdirectory("norman-native-").FullName;

    [Fact]
    public void Every_call_fails_with_the_errno_linux_gives_and_a_sentence_saying_why()
    {
        string output = RunTestProgram("api_errors.c");
        Assert.Contains("EADDRINUSE: Address already in use: udp port 7100 is held by api_errors", output);
    }

    [Fact]
    public void A_C_client_connects_sends_peeks_and_receives_as_on_kernel_sockets()
    {
        Daemon.Peer.EchoOnPort(7);
        RunTestProgram("udp_client.c", DaemonFixture.PeerAddress.ToString());
    }

    [Fact]
    public void A_program_fails_at_socket_when_no_daemon_runs_and_says_how_to_start_one()
    {
        string program = NativeArtifacts.Compile("examples/c/echo.c", _build);
        var (code, _, errors) = Host.Try(null, "env", $"NORMAN_SOCKET={Path.Combine(_build, "absent.sock")}", program, "udp", "7000");
        Assert.Equal(1, code);
        Assert.Contains("socket: Connection refused", errors);
        Assert.Contains("norman up", errors);
    }

    [Fact]
    public void Threads_sharing_one_socket_each_get_every_answer_once_and_whole()
    {
        Daemon.Peer.EchoOnPort(7);
        string output = RunTestProgram("udp_threads.c", DaemonFixture.PeerAddress.ToString());
        Assert.Contains("800 datagrams each back once from 4 threads", output);
    }

    [Fact]
    public void The_C_echo_example_answers_every_datagram_byte_for_byte()
    {
        using var echo = AppProcess.StartFile(NativeArtifacts.Compile("examples/c/echo.c", _build), Daemon.SocketPath, null, "udp", "7000");
        Assert.Equal("listening on udp 0.0.0.0 port 7000", echo.ReadLine());
        AssertEchoes(7000);
    }

    [Fact]
    public void The_C_echo_example_on_an_IPv6_socket_serves_IPv4_peers_too()
    {
        using var echo = AppProcess.StartFile(NativeArtifacts.Compile("examples/c/echo.c", _build), Daemon.SocketPath, null, "udp", "7000", "6");
        Assert.Equal("listening on udp :: port 7000", echo.ReadLine());
        AssertEchoes(7000);
    }

    [Fact]
    public void The_Python_ctypes_example_answers_every_datagram_byte_for_byte()
    {
        using var echo = AppProcess.StartFile("env", Daemon.SocketPath, null,
            $"NORMAN_LIB={NativeArtifacts.Library}", "python3", Path.Combine(global::Norman.Soak.SourceTree.Root, "examples/python/udp_echo.py"), "7000");
        Assert.Equal("listening on udp port 7000", echo.ReadLine());
        AssertEchoes(7000);
    }

    private void AssertEchoes(ushort port)
    {
        var peer = Daemon.Daemon.Peer!;
        foreach (string message in new[] { "hello from the wire", new string('x', 1400) })
        {
            peer.SendUdp(40000, port, Encoding.ASCII.GetBytes(message));
            var answer = peer.TakeDatagram(TimeSpan.FromSeconds(10));
            Assert.NotNull(answer);
            Assert.Equal(port, answer.SourcePort);
            Assert.Equal(40000, answer.DestinationPort);
            Assert.Equal(message, Encoding.ASCII.GetString(answer.Payload));
        }
    }

    /// <summary>
    /// Builds a C test program of native/ and runs it against the daemon (at most 30 s: one that hangs fails rather than
    /// holding the suite); it must exit 0 and say that its checks passed. Returns what it printed.
    /// </summary>
    private string RunTestProgram(string source, params string[] arguments) => RunTestProgram(source, Daemon.SocketPath, _build, arguments);

    /// <summary>The same, against the daemon at <paramref name="socketPath"/>, built in <paramref name="build"/>.</summary>
    internal static string RunTestProgram(string source, string socketPath, string build, params string[] arguments)
    {
        string program = NativeArtifacts.Compile($"tests/Norman.Integration.Tests/native/{source}", build);
        var (code, output, errors) = Host.Try(null, ["timeout", "30", "env", $"NORMAN_SOCKET={socketPath}", program, .. arguments]);
        Assert.True(code == 0, output + errors);
        Assert.Contains("checks passed", output);
        return output;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_build, recursive: true);
    }
}

/// <summary>libnorman on a slow virtual wire (20 Mbit/s), where what a program sends waits in its TX pipe.</summary>
public sealed class NativeLibrarySlowWireTests(ITestOutputHelper log) : DaemonTest
{
    private readonly string _build = Directory.CreateTempSubdirectory("norman-native-").FullName;

    protected override long LineRate => 20_000_000;

    [Fact]
    public void A_sender_that_finds_its_pipe_full_hears_EPOLLOUT_as_an_edge_once_half_of_it_has_left()
    {
        Daemon.Peer.SinkOnPort(9);
        log.WriteLine(NativeLibraryTests.RunTestProgram("udp_writable_edge.c", Daemon.SocketPath, _build, DaemonFixture.PeerAddress.ToString()));
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_build, recursive: true);
    }
}

/// <summary>libnorman's TCP from C over a TAP whose other side is the kernel of a test namespace, talked to with the real socat.</summary>
public sealed class NativeLibraryWireTests : IAsyncLifetime
{
    private readonly TapHost _host = new("native", 3);

    public Task InitializeAsync() => Task.CompletedTask;

    [NetnsFact]
    public void The_C_echo_example_serves_the_real_socat_over_tcp_on_both_families_byte_for_byte()
    {
        var peer = _host.Peer();
        using var echo = AppProcess.StartFile(NativeArtifacts.Compile("examples/c/echo.c", _host.Directory), _host.SocketPath, null, "tcp", "7000", "6");
        Assert.Equal("listening on tcp :: port 7000", echo.ReadLine());
        string bulk = string.Concat(Enumerable.Range(0, 20_000).Select(i => $"{i:D6}\n")); // 140 KB: many segments, windows
        foreach (var (target, message) in new[] { ($"TCP4:{_host.NormanAddress}:7000", "hello over ipv4\n"), ($"TCP6:[{_host.NormanAddress6}]:7000", "hello over ipv6\n"), ($"TCP4:{_host.NormanAddress}:7000", bulk) })
        {
            var (code, output, errors) = peer.Try(message, "socat", "-t", "5", "-", target);
            Assert.True(code == 0, errors);
            Assert.Equal(message.Length, output.Length);
            Assert.Equal(message, output);
        }
    }

    /// <summary>
    /// A C server listens and forks a worker; the worker, through its own copy of libnorman, joins the listener and
    /// answers the connection the kernel of the test namespace opens (the parent takes none from then on).
    /// </summary>
    [NetnsFact]
    public void A_forked_worker_joins_its_parents_listener_through_its_own_copy_of_the_library_and_answers()
    {
        var peer = _host.Peer();
        string program = NativeArtifacts.Compile("tests/Norman.Integration.Tests/native/fork_listener.c", _host.Directory);
        using var server = AppProcess.StartFile("timeout", _host.SocketPath, null, "30", program, "7300");
        Assert.Equal(["listening", "worker joined"], new[] { server.ReadLine(), server.ReadLine() }.Order()); // two processes print them
        var (code, output, errors) = peer.Try(null, "socat", "-t", "5", "-", $"TCP4:{_host.NormanAddress}:7300");
        Assert.True(code == 0, errors);
        Assert.Equal("from the worker\n", output);
        Assert.Matches(@"\d+ checks passed", server.ReadLine());
    }

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();
}
