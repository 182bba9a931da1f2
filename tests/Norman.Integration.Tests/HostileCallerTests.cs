using System.Net.Sockets;
using Norman.Client;
using Norman.Core.Protocol;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane;
using Xunit.Abstractions;

namespace Norman.Integration.Tests;

/// <summary>
/// An unprivileged process must not crash the daemon, take its privileges, exhaust it or blind the administrator:
/// each test here is one way a hostile client, written from the protocol and pipe documents alone and run as nobody,
/// tried it. The hostile programs are norman-testapp's modes and control/hostile_client.py.
/// </summary>
public sealed class HostileCallerTests(ITestOutputHelper output) : DaemonTest
{
    private const string Nobody = "65534";

    private static string HostileClient => AppProcess.BesideTests("control/hostile_client.py");

    /// <summary>
    /// A process closes TCP sockets whose connection tables claim every connection, thousands of times, while two
    /// listers walk the socket table: no listing may read memory that a close has unmapped.
    /// </summary>
    [RootFact]
    public async Task Closing_sockets_while_others_list_them_never_reads_memory_that_is_gone()
    {
        using var racer = AppProcess.Start("norman-testapp", Daemon.SocketPath, Nobody, "close-race", "1500");
        var done = Task.Run(() => racer.ReadLine(120));
        int sockets = 0, stats = 0;
        var listers = new[]
        {
            Task.Run(() =>
            {
                using var control = ControlChannel.Connect(Daemon.SocketPath);
                while (!done.IsCompleted && sockets < 1_000_000)
                {
                    control.CallPages(new ControlRequest { Op = ControlProtocol.Ops.Sockets });
                    sockets++;
                }
            }),
            Task.Run(() =>
            {
                using var control = ControlChannel.Connect(Daemon.SocketPath);
                while (!done.IsCompleted && stats < 1_000_000)
                {
                    control.Call(new ControlRequest { Op = ControlProtocol.Ops.Stats });
                    stats++;
                }
            }),
        };
        await Task.WhenAll(listers);
        Assert.Equal("done 1500", await done);
        Assert.Null(Daemon.Daemon.DataplaneFailure);
        using var after = ControlChannel.Connect(Daemon.SocketPath);
        Assert.True(after.Call(new ControlRequest { Op = ControlProtocol.Ops.Hello }).Ok);
        output.WriteLine($"1500 binds and closes raced by {sockets} socket listings and {stats} stats listings");
    }

    /// <summary>
    /// A connection table that claims 0xffffffff connections, 32,768 of them plausible: more than one answer can
    /// carry. `norman ss` lists them all, page by page, and no answer passes the protocol's bound.
    /// </summary>
    [RootFact]
    public async Task A_socket_claiming_every_connection_does_not_blind_ss()
    {
        using var scribbler = AppProcess.Start("norman-testapp", Daemon.SocketPath, Nobody, "scribble", "7100");
        Assert.Equal("bound 7100", scribbler.ReadLine());

        using var control = ControlChannel.Connect(Daemon.SocketPath);
        var first = control.Call(new ControlRequest { Op = ControlProtocol.Ops.Sockets });
        Assert.NotNull(first.NextCursor);
        string listing = await Norman("ss", "-tan");
        int connections = listing.Split('\n').Count(line => line.Contains("198.18.0.2:", StringComparison.Ordinal));
        Assert.Equal(32768, connections);
        output.WriteLine($"ss listed {connections} connections; the first page held {first.Sockets!.Count} rows");
    }

    /// <summary>
    /// A process connects as uid 65534 (root kept as its saved uid), then takes root back before the daemon looks at
    /// it, as one that exec'd a setuid program would: its identity and privilege are those of the moment it connected.
    /// </summary>
    [RootFact]
    public void Privilege_is_what_the_kernel_recorded_at_connect_not_what_the_pid_runs_later()
    {
        string path = Path.Combine(Daemon.Directory, "probe.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, (UnixFileMode)0b110_110_110);
        listener.Listen(1);
        using var client = AppProcess.StartFile("/usr/bin/python3", Daemon.SocketPath, null, HostileClient, "connect-then-root", path);
        Assert.Equal("ready", client.ReadLine());
        Assert.Contains("\nUid:\t0\t0\t0", File.ReadAllText($"/proc/{client.Pid}/status"));

        using var accepted = listener.Accept();
        var identity = PeerIdentity.Of(accepted);

        Assert.Equal(client.Pid, identity.Pid);
        Assert.Equal(65534, identity.Uid);
        Assert.False(identity.IsRoot);
        Assert.False(Daemon.Daemon.Control.IsAdministrator(identity));
    }

    /// <summary>
    /// Root's connections beyond what the daemon may open (no per-user limit stops root): a .NET process at its
    /// open-file limit cannot open standard error or load code and aborts ("Out of memory"), so the daemon keeps its
    /// last descriptors for itself even from root; the rest are refused at once, and once they close, root gets in.
    /// </summary>
    [RootFact]
    public async Task Root_cannot_take_the_daemons_last_descriptors_and_gets_in_once_they_are_freed()
    {
        using var daemon = StartWithOpenFileLimit(300, out string socketPath);
        var held = new List<Socket>();
        for (int i = 0; i < 400; i++)
        {
            var connection = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            Assert.True(connection.ConnectAsync(new UnixDomainSocketEndPoint(socketPath)).Wait(TimeSpan.FromSeconds(20)), $"connection {i} hung");
            held.Add(connection);
        }
        // A refused connection is answered at once and closed: wait until the daemon has answered 400 - (what it may hold).
        static bool Refused(Socket connection) => connection.Poll(0, SelectMode.SelectRead);
        Assert.True(ApplicationProcessTests.WaitFor(() => held.Count(Refused) >= 400 - (300 - (int)DescriptorReserve.RuntimeFloor)),
            $"only {held.Count(Refused)} of 400 connections were refused");
        int open = Directory.GetFileSystemEntries($"/proc/{daemon.Pid}/fd").Length;
        Assert.True(open <= 300 - DescriptorReserve.RuntimeFloor / 2, $"the daemon holds {open} of its 300 descriptors");
        held.ForEach(c => c.Dispose());

        var (code, listing) = await TryAt(socketPath, "ss", "-a");
        if (daemon.Process.HasExited)
        {
            Assert.Fail($"the daemon died: {daemon.Process.StandardError.ReadToEnd()}");
        }
        Assert.True(code == 0, $"norman ss exited {code}: {listing}");
        output.WriteLine($"root's 400 connections against a daemon limited to 300 descriptors: {open} open at most, the rest refused; ss answered after");
    }

    /// <summary>
    /// An ordinary user opens more connections than the daemon has descriptors: the daemon refuses those that would
    /// eat into what it keeps for administrators, so root still gets in.
    /// </summary>
    [RootFact]
    public async Task Ordinary_users_cannot_take_the_descriptors_kept_for_the_administrator()
    {
        using var daemon = StartWithOpenFileLimit(600, out string socketPath);
        using var hog = AppProcess.StartFile("/usr/bin/python3", socketPath, Nobody, HostileClient, "connect-many", socketPath, "700");
        Assert.Equal("opened 700", hog.ReadLine(60));
        string refused = hog.ReadLine(60);
        Assert.Matches(@"^refused [1-9]\d*$", refused);

        var (code, listing) = await TryAt(socketPath, "ss", "-a");
        Assert.True(code == 0, $"root's norman ss exited {code}: {listing}");
        output.WriteLine($"700 connections of nobody against a daemon limited to 600 descriptors: {refused}; root's ss answered");
    }

    /// <summary>A request larger than an ordinary user's operations need is refused before anything is allocated for it.</summary>
    [RootFact]
    public void An_ordinary_users_oversized_request_is_refused()
    {
        using var client = AppProcess.StartFile("/usr/bin/python3", Daemon.SocketPath, Nobody, HostileClient, "oversize", Daemon.SocketPath, $"{1 << 20}");
        Assert.Equal(ControlProtocol.Errors.MessageTooLong, client.ReadLine());
    }

    /// <summary>
    /// Connections that each declare a request and send only its first bytes: one user's unfinished requests may hold
    /// only so much of the daemon's memory (4 MiB: 64 of 64 KiB); the rest are refused.
    /// </summary>
    [RootFact]
    public void One_users_unfinished_requests_hold_a_bounded_amount_of_memory()
    {
        int each = ControlSession.MaxOrdinaryRequestBytes;
        int fit = (int)(ControlSession.DefaultPendingBytesPerUid / each);
        using var client = AppProcess.StartFile("/usr/bin/python3", Daemon.SocketPath, Nobody, HostileClient, "pending", Daemon.SocketPath,
            $"{fit + 16}", $"{each}");
        Assert.Equal("refused 16", client.ReadLine(60));
    }

    /// <summary>
    /// A caller that sends request after request and never reads an answer: the daemon waits for it without a thread,
    /// cuts it off after a while, and answers everyone else meanwhile. Listings are answered from the thread pool,
    /// hellos on the control reactor's thread, whose unsent rest the pool finishes.
    /// </summary>
    [Theory]
    [InlineData("sockets")]
    [InlineData("hello")]
    public async Task A_caller_that_never_reads_its_answers_is_cut_off_and_slows_no_one(string op)
    {
        using var stuck = AppProcess.StartFile("/usr/bin/python3", Daemon.SocketPath, null, HostileClient, "no-read", Daemon.SocketPath, "50000", op);
        var cut = Task.Run(() => stuck.ReadLine(90));
        using var control = ControlChannel.Connect(Daemon.SocketPath);
        int answered = 0;
        while (!cut.IsCompleted && answered < 100_000)
        {
            var hello = Task.Run(() => control.Call(new ControlRequest { Op = ControlProtocol.Ops.Hello }));
            Assert.True((await hello.WaitAsync(TimeSpan.FromSeconds(10))).Ok);
            answered++;
        }
        Assert.StartsWith("closed after", await cut);
        output.WriteLine($"{await cut}; {answered} hellos answered meanwhile");
    }

    /// <summary>`app` matches the program the process runs, not the name it gives itself (prctl(PR_SET_NAME)); `exe` its path.</summary>
    [Fact]
    public void The_app_and_exe_matches_hold_against_a_process_that_renames_itself()
    {
        var rule = Daemon.Daemon.Policy.Add(global::Norman.Daemon.Policy.Chain.Egress, ["app", "norman-testapp", "drop"]);
        using (var renamed = Daemon.Start("norman-testapp", "rename", "innocent", "5600"))
        {
            Assert.Equal("sent", renamed.ReadLine());
            var owner = Daemon.Daemon.Control.Sockets.Snapshot().Single(s => s.LocalPort == 5600).Owner;
            Assert.Equal("innocent", owner.ProcessName);
            Assert.Equal("norman-testapp", owner.AppName);
            Assert.True(ApplicationProcessTests.WaitFor(() => Daemon.Daemon.Engine.Counters.Drops(DropReason.FilteredEgress) == 1));
        }

        Daemon.Daemon.Policy.Delete(rule.Handle);
        string executable = new FileInfo(AppProcess.BesideTests("norman-testapp")).FullName;
        Daemon.Daemon.Policy.Add(global::Norman.Daemon.Policy.Chain.Egress, ["exe", executable, "drop"]);
        using var again = Daemon.Start("norman-testapp", "rename", "innocent", "5601");
        Assert.Equal("sent", again.ReadLine());
        Assert.Equal(executable, Daemon.Daemon.Control.Sockets.Snapshot().Single(s => s.LocalPort == 5601).Owner.Executable);
        Assert.True(ApplicationProcessTests.WaitFor(() => Daemon.Daemon.Engine.Counters.Drops(DropReason.FilteredEgress) == 2));
        Assert.Equal(0, Daemon.Peer.ReceivedUdpPackets);
    }

    /// <summary>`norman up` in a process of its own whose open-file limit is <paramref name="limit"/>.</summary>
    private AppProcess StartWithOpenFileLimit(int limit, out string socketPath)
    {
        socketPath = Path.Combine(Daemon.Directory, $"limited-{limit}.sock");
        var daemon = AppProcess.StartFile("/usr/bin/prlimit", socketPath, null, $"--nofile={limit}:{limit}", "--",
            AppProcess.BesideTests("norman"), "up", "--socket", socketPath);
        Assert.Contains("control socket", daemon.ReadLine());
        return daemon;
    }
}
