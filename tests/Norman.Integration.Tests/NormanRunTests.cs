using System.Text.RegularExpressions;

namespace Norman.Integration.Tests;

/// <summary>
/// `norman run`: real programs from Debian's packages, unmodified, with their sockets on Norman over a TAP, and the
/// test namespace's kernel talking to them with the real socat and curl. About a minute and a half, so it starts first.
/// </summary>
[RunsLong]
public sealed class NormanRunTests : IAsyncLifetime
{
    private readonly TapHost _host = new("run", 4);

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Runs `norman run -- PROGRAM…` against the TAP host's daemon to its end, with <paramref name="input"/> on its stdin.</summary>
    private (int ExitCode, string Output, string Errors) TryUnderNorman(string? input, params string[] program) =>
        Host.Try(input, ["env", $"NORMAN_SOCKET={_host.SocketPath}", AppProcess.BesideTests("norman"), "run", "--", .. program]);

    /// <summary>Starts `norman run -- PROGRAM…` against the TAP host's daemon; the namespace and AppProcess stop it.</summary>
    private AppProcess NormanRun(params string[] program) =>
        AppProcess.Start("norman", _host.SocketPath, null, ["run", "--", .. program]);

    [NetnsFact]
    public void Socat_on_Norman_echoes_udp_from_the_kernel_and_norman_ss_names_it()
    {
        var peer = _host.Peer();
        using var server = NormanRun("socat", "-d", "-d", "UDP-LISTEN:7000", "EXEC:cat");
        Host.WaitForError(server.Process, "listening on", TimeSpan.FromSeconds(20));
        var (code, output, errors) = peer.Try("hello through norman run\n", "socat", "-t", "3", "-", $"UDP:{_host.NormanAddress}:7000");
        Assert.True(code == 0, errors);
        Assert.Equal("hello through norman run\n", output);
        Assert.Contains("socat", Host.Run(AppProcess.BesideTests("norman"), "ss", "-u", "-a", "-p", "--socket", _host.SocketPath));
    }

    [NetnsFact]
    public void Socat_on_Norman_serves_tcp_to_the_kernels_socat_byte_for_byte()
    {
        var peer = _host.Peer();
        using var server = NormanRun("socat", "-d", "-d", "TCP-LISTEN:7001,reuseaddr", "EXEC:cat");
        Host.WaitForError(server.Process, "listening on", TimeSpan.FromSeconds(20));
        string bulk = string.Concat(Enumerable.Range(0, 10_000).Select(i => $"{i:D6}\n"));
        var (code, output, errors) = peer.Try(bulk, "socat", "-t", "5", "-", $"TCP4:{_host.NormanAddress}:7001");
        Assert.True(code == 0, errors);
        Assert.Equal(bulk, output);
    }

    [NetnsFact]
    public void Nc_on_Norman_talks_udp_and_tcp_both_ways_with_the_kernels_socat()
    {
        var peer = _host.Peer();
        // Norman listens, the kernel connects: nc -l for TCP, nc -u -l for UDP (answering where the first datagram came from).
        using (var tcp = NormanRun("nc", "-l", "7002"))
        {
            Assert.True(ApplicationProcessTests.WaitFor(() => NormanSs("-t", "-l").Contains(":7002", StringComparison.Ordinal)), "nc never listened");
            tcp.Process.StandardInput.WriteLine("from norman over tcp");
            tcp.Process.StandardInput.Close();
            var (code, output, errors) = peer.Try("from the kernel over tcp\n", "socat", "-t", "3", "-", $"TCP4:{_host.NormanAddress}:7002");
            Assert.True(code == 0, errors);
            Assert.Equal("from norman over tcp\n", output);
            Assert.Equal("from the kernel over tcp", tcp.ReadLine());
        }
        // The kernel listens, Norman connects: nc as the client of a socat server in the namespace.
        using var server = peer.StartAndWaitFor("listening on", "socat", "-d", "-d", "TCP-LISTEN:7003,reuseaddr", "EXEC:cat");
        var (clientCode, echoed, clientErrors) = TryUnderNorman("norman connects out\n", "nc", "-N", "-w", "3", _host.PeerAddress, "7003");
        Assert.True(clientCode == 0, clientErrors);
        Assert.Equal("norman connects out\n", echoed);
        using var udpServer = peer.StartAndWaitFor("listening on", "socat", "-d", "-d", "UDP-LISTEN:7004", "EXEC:cat");
        (clientCode, echoed, clientErrors) = TryUnderNorman("a datagram out and back\n", "nc", "-u", "-w", "2", _host.PeerAddress, "7004");
        Assert.Equal("a datagram out and back\n", echoed);
    }

    /// <summary>
    /// A forked child is refused its parent's UDP socket with a sentence (EBADF), and its own new sockets are Norman's,
    /// through a copy of the library of its own: a UDP one echoed by the namespace's socat, and a TCP connection to the
    /// namespace's socat (the namespace is reachable through Norman's TAP only); the parent's socket works on.
    /// </summary>
    [NetnsFact]
    public void A_forked_child_is_refused_its_parents_norman_socket_with_a_sentence_and_its_new_sockets_are_normans()
    {
        var peer = _host.Peer();
        using var echo = UdpEcho(7007);
        using var tcpEcho = peer.StartAndWaitFor("listening on", "socat", "-d", "-d", "TCP-LISTEN:7008,reuseaddr", "EXEC:cat");
        string program = """
            import os, socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 7005))
            pid = os.fork()
            if pid == 0:
                try:
                    s.sendto(b"x", (sys.argv[1], 9))
                    print("child: sent", flush=True)
                except OSError as error:
                    print("child:", error.errno, flush=True)
                fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                fresh.bind(("0.0.0.0", 7006))
                fresh.settimeout(10)
                fresh.sendto(b"from the child over udp", (sys.argv[1], 7007))
                print("child: echoed", fresh.recvfrom(64)[0].decode(), flush=True)
                stream = socket.create_connection((sys.argv[1], 7008), timeout=10)
                stream.sendall(b"from the child over tcp\n")
                print("child: echoed", stream.makefile().readline().strip(), flush=True)
                stream.close()
                os._exit(0)
            os.waitpid(pid, 0)
            s.sendto(b"parent still", (sys.argv[1], 7007))
            print("parent:", s.recvfrom(64)[0].decode(), flush=True)
            """;
        var (output, errors) = RunUnderNorman("python3", "-c", program, _host.PeerAddress);
        Assert.Contains("child: 9", output); // EBADF
        Assert.Contains("forked from a Norman program", errors);
        Assert.True(output.Contains("child: echoed from the child over udp", StringComparison.Ordinal), output + errors);
        Assert.True(output.Contains("child: echoed from the child over tcp", StringComparison.Ordinal), output + errors);
        Assert.Contains("parent: parent still", output);
    }

    /// <summary>
    /// A Norman socket passed to a program started by exec (inheritable, pass_fds) is refused there with a sentence
    /// (EBADF), not read as the Unix socket its descriptor now is; one marked close-on-exec is not inherited at all; the
    /// parent's socket works on. (A Norman socket lives in the program that opened it: docs/interposer.md.)
    /// </summary>
    [NetnsFact]
    public void A_norman_socket_passed_over_exec_is_refused_with_a_sentence_and_the_parents_works_on()
    {
        using var echo = UdpEcho(7019);
        const string program = """
            import os, socket, subprocess, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 7018))
            private = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            private.bind(("0.0.0.0", 7020))
            child = (
                "import os, socket, sys\n"
                "try:\n"
                "    socket.socket(fileno=int(sys.argv[1])).sendto(b'x', (sys.argv[2], 7019))\n"
                "    print('child: sent', flush=True)\n"
                "except OSError as error:\n"
                "    print('child:', error.errno, flush=True)\n"
                "try:\n"
                "    os.fstat(int(sys.argv[3]))\n"
                "    print('child: close-on-exec one open', flush=True)\n"
                "except OSError as error:\n"
                "    print('child: close-on-exec one', error.errno, flush=True)\n")
            done = subprocess.run([sys.executable, "-c", child, str(s.fileno()), sys.argv[1], str(private.fileno())],
                                  pass_fds=[s.fileno()], capture_output=True, text=True)
            print(done.stdout, end="", flush=True)
            print(done.stderr, end="", file=sys.stderr, flush=True)
            s.sendto(b"parent still", (sys.argv[1], 7019))
            print("parent:", s.recvfrom(64)[0].decode(), flush=True)
            """;
        var (output, errors) = RunUnderNorman("python3", "-c", program, _host.PeerAddress);
        Assert.Contains("child: 9", output); // EBADF
        Assert.Contains("started by exec from a Norman program", errors);
        Assert.Contains("child: close-on-exec one 9", output);
        Assert.Contains("parent: parent still", output);
    }

    [NetnsFact]
    public void A_non_blocking_connect_is_in_progress_then_writable_then_echoes_and_peeks_and_a_refused_one_says_so_in_so_error()
    {
        var peer = _host.Peer();
        using var server = peer.StartAndWaitFor("listening on", "socat", "-d", "-d", "TCP-LISTEN:7007,reuseaddr,fork", "EXEC:cat");
        string output = RunCompiled("tests/Norman.Integration.Tests/native/nonblocking_connect.c", _host.PeerAddress, "7007", "7008");
        Assert.Contains("echoed: hello after EINPROGRESS", output);
        Assert.Contains("peeked: peek at me", output);
        Assert.Contains("after discarding 5: 5 of this", output);
        Assert.Contains("bound: from port 7012", output);
        Assert.Contains("refused: Connection refused", output);
    }

    /// <summary>
    /// The stream calls beyond send and recv, in C as servers make them (native/stream_calls.c): TCP_NODELAY, writev and
    /// readv, sendmsg and recvmsg, dup/dup2/dup3 copies closed in any order, shutdown(SHUT_WR) with the echo still
    /// coming, EPIPE after it with SIGPIPE unless MSG_NOSIGNAL; then accept4's SOCK_NONBLOCK and SOCK_CLOEXEC,
    /// getpeername and an EPOLLEXCLUSIVE listener, for the kernel's socat connecting in.
    /// </summary>
    [NetnsFact]
    public void Stream_calls_beyond_send_and_recv_behave_as_on_linux()
    {
        var peer = _host.Peer();
        using var echo = peer.StartAndWaitFor("listening on", "socat", "-d", "-d", "TCP-LISTEN:7013,reuseaddr,fork", "EXEC:cat");
        using var program = NormanRun(NativeArtifacts.Compile("tests/Norman.Integration.Tests/native/stream_calls.c", _host.Directory),
            _host.PeerAddress, "7013", "7014");
        var seen = new List<string>();
        void ReadUntil(params string[] ends)
        {
            for (int lines = 0; lines < 50; lines++)
            {
                string line;
                try
                {
                    line = program.ReadLine();
                }
                catch (TimeoutException ended)
                {
                    Assert.Fail($"{ended.Message}\nafter:\n{string.Join('\n', seen)}");
                    return;
                }
                seen.Add(line);
                if (ends.Any(end => line.StartsWith(end, StringComparison.Ordinal)))
                {
                    return;
                }
            }
        }
        ReadUntil("listening");
        var (code, _, errors) = peer.Try("hello from the kernel\n", "socat", "-t", "3", "-", $"TCP4:{_host.NormanAddress}:7014");
        Assert.True(code == 0, errors);
        ReadUntil("all as on Linux", "some differ");
        string output = string.Join('\n', seen);
        Assert.False(output.Contains("FAILED", StringComparison.Ordinal), output);
        Assert.Contains("readv: gather in three pieces", output);
        Assert.Contains("recvmsg: message in two", output);
        Assert.Contains("copies: through the last copy", output);
        Assert.Contains("after shutdown: the last line", output);
        Assert.Contains("sigpipe: 0 with MSG_NOSIGNAL, 1 without", output);
        Assert.Contains($"accepted from {_host.PeerAddress}: hello from the kernel", output);
    }

    /// <summary>
    /// A TCP sender whose peer reads nothing: once a send finds the buffer full (EAGAIN), poll says the socket is not
    /// writable and an edge-triggered epoll reports nothing; when the peer reads, exactly one EPOLLOUT edge comes and
    /// poll says writable again, as on Linux (a program that polls for POLLOUT would otherwise spin).
    /// </summary>
    [NetnsFact]
    public void A_tcp_socket_whose_peer_reads_nothing_is_not_writable_until_the_peer_reads_then_one_epollout_edge_comes()
    {
        var peer = _host.Peer();
        const string sink = """
            import socket, sys
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            listener.bind(("0.0.0.0", 7013))
            listener.listen(2)
            print("listening on 7013", file=sys.stderr, flush=True)
            data, _ = listener.accept()
            go, _ = listener.accept()  # the sender says it found its buffer full; only now is anything read
            while data.recv(65536):
                pass
            """;
        using var server = peer.StartAndWaitFor("listening on", "python3", "-c", sink);
        const string sender = """
            import select, socket, sys
            s = socket.create_connection((sys.argv[1], 7013))
            s.setblocking(False)
            epoll = select.epoll()
            epoll.register(s.fileno(), select.EPOLLOUT | select.EPOLLET)
            print("registered:", epoll.poll(1) == [(s.fileno(), select.EPOLLOUT)], flush=True)
            level = select.poll()
            level.register(s, select.POLLOUT)
            chunk, sent = b"x" * 65536, 0
            def fill():
                global sent
                for _ in range(10000):
                    try:
                        sent += s.send(chunk)
                    except BlockingIOError:
                        return
            # Full once the peer's window is shut: ACKs still in flight at the first EAGAIN free room (an edge each),
            # so send again after each until half a second brings none.
            fill()
            for _ in range(100):
                if not epoll.poll(0.5):
                    break
                fill()
            print("full after", sent > 0, "poll:", level.poll(0), "epoll:", epoll.poll(0), flush=True)
            go = socket.create_connection((sys.argv[1], 7013))
            edge = epoll.poll(10)
            print("room: edge", edge == [(s.fileno(), select.EPOLLOUT)], "poll", level.poll(0) == [(s.fileno(), select.POLLOUT)], "again", epoll.poll(0), flush=True)
            print("sent again:", s.send(b"y") == 1, flush=True)
            """;
        var (output, _) = RunUnderNorman("python3", "-c", sender, _host.PeerAddress);
        Assert.Contains("registered: True", output);
        Assert.Contains("full after True poll: [] epoll: []", output);
        Assert.Contains("room: edge True poll True again []", output);
        Assert.Contains("sent again: True", output);
    }

    /// <summary>
    /// A signal interrupts a blocking receive on a Norman socket as it would a kernel socket's (EINTR: Python's handler
    /// runs and its exception ends the wait), because the program's thread waits in the kernel on its own descriptor,
    /// not inside the library; and the socket works on after it, blocking as before.
    /// </summary>
    [NetnsFact]
    public void A_signal_interrupts_a_blocking_receive_and_the_socket_works_on_after_it()
    {
        using var echo = UdpEcho(7015);
        const string program = """
            import os, signal, socket, sys, time
            class Interrupted(Exception):
                pass
            def ring(signum, frame):
                raise Interrupted()
            signal.signal(signal.SIGALRM, ring)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 7014))
            inode = os.readlink(f"/proc/self/fd/{s.fileno()}")[len("socket:["):-1]
            print("norman's:", any(line.split()[6] == inode for line in open("/proc/self/net/unix").readlines()[1:]), flush=True)
            start = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            try:
                s.recvfrom(2048)
                print("received before the signal", flush=True)
            except Interrupted:
                print("interrupted:", 0.2 < time.monotonic() - start < 5, flush=True)
            s.sendto(b"still here", (sys.argv[1], 7015))
            print("echoed:", s.recvfrom(2048)[0].decode(), flush=True)
            """;
        var (output, _) = RunUnderNorman("python3", "-c", program, _host.PeerAddress);
        Assert.Contains("norman's: True", output); // its descriptor is the readiness socketpair's end, not a kernel UDP socket
        Assert.Contains("interrupted: True", output);
        Assert.Contains("echoed: still here", output);
    }

    /// <summary>
    /// As on Linux, a signal whose handler was installed with SA_RESTART leaves a blocking receive waiting (it returns
    /// the datagram that comes after), and one without ends it with EINTR (native/signal_restart.c).
    /// </summary>
    [NetnsFact]
    public void A_blocking_receive_is_restarted_after_an_sa_restart_handler_and_fails_with_eintr_after_another()
    {
        using var echo = UdpEcho(7017);
        string output = RunCompiled("tests/Norman.Integration.Tests/native/signal_restart.c", _host.PeerAddress, "7017");
        Assert.Contains("with SA_RESTART: restarted, then got the datagram", output);
        Assert.Contains("without SA_RESTART: EINTR", output);
    }

    /// <summary>
    /// Socket options on a Norman socket as on Linux (native/socket_options.c): SO_RCVBUF and SO_SNDBUF read back what
    /// a kernel socket given the same values reports; a blocking receive with SO_RCVTIMEO gives up with EAGAIN once it
    /// passed, getsockopt reads it back, a bad tv_usec is EDOM, and a signal during a receive with a timeout is EINTR
    /// even with SA_RESTART.
    /// </summary>
    [NetnsFact]
    public void Buffer_sizes_read_back_as_the_kernels_and_a_receive_timeout_gives_up_with_eagain_and_a_signal_then_is_eintr()
    {
        _host.Peer();
        string output = RunCompiled("tests/Norman.Integration.Tests/native/socket_options.c");
        Assert.Contains("buffer sizes read back as the kernel's", output);
        Assert.Contains("interrupted with a timeout set: EINTR", output);
        Assert.Contains("socket options: all", output);
    }

    /// <summary>EPOLLONESHOT on a Norman socket: reported once, then not until re-armed (native/epoll_oneshot.c).</summary>
    [NetnsFact]
    public void Epolloneshot_reports_a_norman_socket_once_until_it_is_rearmed()
    {
        using var echo = UdpEcho(7023);
        string output = RunCompiled("tests/Norman.Integration.Tests/native/epoll_oneshot.c", _host.PeerAddress, "7023");
        Assert.Contains("epoll oneshot: all", output);
    }

    [NetnsFact]
    public void Datagrams_go_out_in_one_sendmmsg_and_come_back_through_recvmmsg()
    {
        var peer = _host.Peer();
        // A datagram echo that keeps each datagram whole (socat's EXEC:cat may join two).
        const string echo = "import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 7009))\n" +
            "print('listening on 7009', file=sys.stderr, flush=True)\nwhile True:\n    s.sendto(*s.recvfrom(2048))\n";
        using var server = peer.StartAndWaitFor("listening on", "python3", "-c", echo);
        string output = RunCompiled("tests/Norman.Integration.Tests/native/mmsg_echo.c", _host.PeerAddress, "7009");
        Assert.Contains("3 datagrams out in one sendmmsg", output);
    }

    /// <summary>Runs `norman run -- PROGRAM…` to its end; it must exit 0. Its output and its errors.</summary>
    private (string Output, string Errors) RunUnderNorman(params string[] program)
    {
        var (code, output, errors) = TryUnderNorman(null, program);
        Assert.True(code == 0, output + errors);
        return (output, errors);
    }

    /// <summary>Compiles a C test program and runs it under `norman run` with <paramref name="arguments"/>; its output.</summary>
    private string RunCompiled(string source, params string[] arguments) =>
        RunUnderNorman([NativeArtifacts.Compile(source, _host.Directory), .. arguments]).Output;

    /// <summary>A UDP echo server on the test namespace's kernel (socat), listening when this returns.</summary>
    private System.Diagnostics.Process UdpEcho(int port) =>
        _host.Peer().StartAndWaitFor("receiving on", "socat", "-d", "-d", $"UDP4-RECVFROM:{port},fork", "PIPE");

    private string NormanSs(params string[] arguments) =>
        Host.Run([AppProcess.BesideTests("norman"), "ss", "-n", .. arguments, "--socket", _host.SocketPath]);

    /// <summary>
    /// The administrator's tools over a program under `norman run`, as over any application: a capture of its port
    /// names it and shows both directions, a QoS class matched by its name marks what it sends (the namespace's
    /// tcpdump sees the DSCP), and a filter rule stops what comes to it, counted.
    /// </summary>
    [NetnsFact]
    public void Capture_qos_and_filter_see_a_program_under_norman_run_as_any_application()
    {
        var peer = _host.Peer();
        string echo = """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7015)); print("ready", flush=True)
            while True:
                data, sender = s.recvfrom(2048); s.sendto(data, sender)
            """;
        using var server = NormanRun("python3", "-c", echo);
        Assert.Equal("ready", server.ReadLine());
        string norman = AppProcess.BesideTests("norman");
        // `app NAME` is the executable's file name (python3.11), which the process cannot change; ss shows its comm.
        string app = Path.GetFileName(Host.Run("readlink", "-f", "/usr/bin/python3").Trim());
        // The name ss shows, copied into a match, would match nothing: the answer says so and what to write.
        var (_, _, note) = Host.Try(null, norman, "qos", "add", "byname", "match", "app", "python3", "--socket", _host.SocketPath);
        Assert.Matches($@"note: no Norman socket's program is named python3, but process \d+ \(python3, as ss shows it\) runs {Regex.Escape(app)}", note);
        Assert.Contains($"write 'app {app}'", note);
        Host.Run(norman, "qos", "delete", "byname", "--socket", _host.SocketPath);
        Host.Run(norman, "qos", "add", "marked", "dscp", "ef", "match", "app", app, "--socket", _host.SocketPath);
        using var capture = AppProcess.Start("norman", _host.SocketPath, null, "capture", "--timeout", "30", "-c", "2", "-p", $"app={app}", "udp", "port", "7015");
        Assert.True(ApplicationProcessTests.WaitFor(() => _host.Daemon.Engine.TapCount == 1), "the capture never started");
        using var tcpdump = peer.StartAndWaitFor("listening on", "tcpdump", "-c", "1", "-v", "-n", "-i", "any", "udp", "and", "src", "port", "7015");

        var (code, output, errors) = peer.Try("through capture and qos\n", "socat", "-T", "3", "-", $"UDP:{_host.NormanAddress}:7015");
        Assert.True(code == 0 && output == "through capture and qos\n", errors);

        string captured = capture.Process.StandardOutput.ReadToEnd();
        Assert.True(captured.Contains($"{_host.PeerAddress}.", StringComparison.Ordinal), $"captured: {captured}{capture.Process.StandardError.ReadToEnd()}");
        Assert.Contains($"> {_host.NormanAddress}.7015: UDP, length 24", captured);
        Assert.Contains($"{_host.NormanAddress}.7015 > {_host.PeerAddress}.", captured);
        Assert.True(tcpdump.WaitForExit(10_000), "the namespace's tcpdump saw no answer");
        Assert.Contains("tos 0xb8", tcpdump.StandardOutput.ReadToEnd()); // EF, set by the class the program's name matched

        Host.Run(norman, "filter", "add", "ingress", "udp", "dport", "7015", "drop", "--socket", _host.SocketPath);
        var (_, dropped, _) = peer.Try("stopped by the filter\n", "socat", "-T", "1", "-", $"UDP:{_host.NormanAddress}:7015");
        Assert.Equal("", dropped);
        Assert.Matches(@"udp dport 7015 drop\s", Host.Run(norman, "filter", "list", "--socket", _host.SocketPath));
        Assert.True(_host.Daemon.Policy.List().Rules[0].Counters.Packets >= 1, "the rule counted nothing");
    }

    /// <summary>
    /// A forking server, as Python's socketserver and socat make one: the parent accepts, forks, closes its copy of the
    /// connection and accepts the next; the child serves the connection it inherited. Each of three clients in turn is
    /// welcomed by the parent, then answered by a child of its own, line by line, and its end reaches the client. And inetd's way
    /// (systemd-socket-activate --accept --inetd): the child execs the service with the connection as stdin and stdout.
    /// </summary>
    [NetnsFact]
    public void A_forking_server_s_children_serve_the_connections_their_parent_accepted()
    {
        var peer = _host.Peer();
        string server = """
            import os, socketserver
            class Echo(socketserver.StreamRequestHandler):
                def handle(self):
                    for line in self.rfile:
                        self.wfile.write(b"child %d: " % os.getpid() + line)
            class Server(socketserver.ForkingTCPServer):
                allow_reuse_address = True
                def process_request(self, request, address):
                    request.sendall(b"welcome from %d\n" % os.getpid()) # the parent writes first: its child goes on from there
                    super().process_request(request, address)
            with Server(("0.0.0.0", 7020), Echo) as s:
                print("serving", os.getpid(), flush=True)
                s.serve_forever()
            """;
        using var python = NormanRun("python3", "-c", server);
        string parent = python.ReadLine().Split(' ')[1];
        var answeredBy = new HashSet<string>();
        for (int client = 0; client < 3; client++)
        {
            string lines = $"client {client} line 1\nclient {client} line 2\n";
            var (code, output, errors) = peer.Try(lines, "socat", "-t", "5", "-", $"TCP4:{_host.NormanAddress}:7020");
            Assert.True(code == 0, $"client {client}: {errors}");
            var answer = Regex.Matches(output, @"child (\d+): (client \d line \d)");
            Assert.True(answer.Count == 2 && output.StartsWith($"welcome from {parent}\n", StringComparison.Ordinal), $"client {client} got: {output} {errors}");
            Assert.Equal([$"client {client} line 1", $"client {client} line 2"], answer.Select(m => m.Groups[2].Value));
            answeredBy.Add(answer[0].Groups[1].Value);
        }
        Assert.Equal(3, answeredBy.Count);
        Assert.DoesNotContain(parent, answeredBy);

        // socat's own fork: a child per connection, the parent listening on.
        using var socat = NormanRun("socat", "-d", "-d", "TCP-LISTEN:7021,reuseaddr,fork", "EXEC:cat");
        Host.WaitForError(socat.Process, "listening on", TimeSpan.FromSeconds(20));
        for (int client = 0; client < 2; client++)
        {
            string bulk = string.Concat(Enumerable.Range(0, 5_000).Select(i => $"{client}:{i:D6}\n"));
            var (code, output, errors) = peer.Try(bulk, "socat", "-t", "5", "-", $"TCP4:{_host.NormanAddress}:7021");
            Assert.True(code == 0, errors);
            Assert.True(bulk == output, $"socat's child {client} echoed {output.Length} bytes of {bulk.Length}: {errors}");
        }

        // inetd's way: a child per connection, which makes it its stdin and stdout and execs the service (cat).
        using var inetd = NormanRun("systemd-socket-activate", "-l", "7023", "--accept", "--inetd", "cat");
        Host.WaitForError(inetd.Process, "Listening on", TimeSpan.FromSeconds(20));
        for (int client = 0; client < 2; client++)
        {
            var (code, output, errors) = peer.Try($"to cat {client}\n", "socat", "-t", "5", "-", $"TCP4:{_host.NormanAddress}:7023");
            Assert.True(code == 0 && output == $"to cat {client}\n", $"inetd's cat {client}: {output} {errors}");
        }
    }

    /// <summary>
    /// A connection open when its server forked a child that never touches it (it forked to do something else): the
    /// server's close does not end the connection while the child lives, as on Linux, where the child holds a copy;
    /// once the child has ended, the client gets the end (the server's FIN), not a connection left open for good. A
    /// child that execs (the copy closed on exec) holds nothing: the server's close ends the connection at once.
    /// </summary>
    [NetnsFact]
    public void A_connection_closed_by_a_parent_whose_child_never_uses_it_ends_when_the_child_does()
    {
        var peer = _host.Peer();
        // A server that accepts one connection, writes a line, forks a child that runs `child`, and closes its copy.
        static string Server(int port, string child) => $$"""
            import os, socket, time
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", {{port}})); s.listen(8); print("listening", flush=True)
            c, _ = s.accept()
            c.sendall(b"from the parent\n")
            if os.fork() == 0:
                {{child}}
            c.close()
            time.sleep(30)
            """;
        // Reads to the end, then says whether the child had ended by then (it leaves a file when it ends).
        string client = """
            import os, socket, sys
            c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
            data = b""
            while True:
                chunk = c.recv(100)
                if not chunk: break
                data += chunk
            print(data.decode().strip(), "| the end came after the child ended:", os.path.exists(sys.argv[3]))
            """;
        string marker = Path.Combine(_host.Directory, "child-ended");
        using var python = NormanRun("python3", "-c", Server(7022, $"time.sleep(0.5); open(\"{marker}\", \"w\").close(); os._exit(0)"));
        Assert.Equal("listening", python.ReadLine());
        var (code, output, errors) = peer.Try(null, "python3", "-c", client, _host.NormanAddress, "7022", marker);
        Assert.True(code == 0, errors);
        Assert.Equal("from the parent | the end came after the child ended: True", output.Trim());

        // A child that execs closes its copy (Python's sockets are close-on-exec): the parent's close ends the
        // connection at once, while the program the child became still runs.
        string execMarker = Path.Combine(_host.Directory, "exec-child-ended");
        using var execing = NormanRun("python3", "-c", Server(7024, $"os.execvp(\"sh\", [\"sh\", \"-c\", \"sleep 2; touch {execMarker}\"])"));
        Assert.Equal("listening", execing.ReadLine());
        (code, output, errors) = peer.Try(null, "python3", "-c", client, _host.NormanAddress, "7024", execMarker);
        Assert.True(code == 0, errors);
        Assert.Equal("from the parent | the end came after the child ended: False", output.Trim());
    }

    [NetnsFact]
    public void Pythons_http_server_on_Norman_serves_curl_a_file_byte_for_byte()
    {
        var peer = _host.Peer();
        string site = Path.Combine(_host.Directory, "site");
        Directory.CreateDirectory(site);
        var file = new byte[1_000_000];
        new Random(18).NextBytes(file);
        File.WriteAllBytes(Path.Combine(site, "file.bin"), file);
        using var server = NormanRun("python3", "-u", "-m", "http.server", "8000", "--directory", site);
        Assert.StartsWith("Serving HTTP on", server.ReadLine());
        string fetched = Path.Combine(_host.Directory, "fetched.bin");
        // The peer's namespace sees the host's files: curl writes where the test reads.
        peer.Run("curl", "-sS", "--max-time", "20", "-o", fetched, $"http://{_host.NormanAddress}:8000/file.bin");
        Assert.Equal(file, File.ReadAllBytes(fetched));
    }

    [NetnsFact]
    public void Redis_on_Norman_serves_redis_benchmark_without_errors_and_a_1_MB_value_intact()
    {
        var peer = _host.Peer();
        // Redis binds 0.0.0.0 and :: (IPv6-only) on one port, sets O_NONBLOCK through fcntl64 and waits in epoll.
        using var server = NormanRun("redis-server", "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no");
        WaitForLine(server, "Ready to accept connections");
        foreach (string pipeline in new[] { "1", "16" })
        {
            var (code, output, errors) = peer.Try(null, "redis-benchmark", "-h", _host.NormanAddress, "-p", "6379", "-c", "50", "-n", "20000",
                "-P", pipeline, "-t", "get,set", "-q");
            Assert.True(code == 0, errors);
            Assert.Contains("SET: ", output);
            Assert.Contains("GET: ", output);
            Assert.DoesNotContain("rror", output + errors);
        }
        string value = string.Concat(Enumerable.Range(0, 1_048_576 / 8).Select(i => $"{i % 10_000_000:D7}\n"));
        var (setCode, setOutput, setErrors) = peer.Try(value, "redis-cli", "-h", _host.NormanAddress, "-p", "6379", "-x", "set", "big");
        Assert.True(setCode == 0 && setOutput.Trim() == "OK", setOutput + setErrors);
        Assert.Equal(value, peer.Run("redis-cli", "-h", _host.NormanAddress, "-p", "6379", "--raw", "get", "big")[..value.Length]);
    }

    /// <summary>
    /// iperf3 on Norman against iperf3 on the kernel, each as server and as client: TCP and UDP, both directions at
    /// once (--bidir), 10 s each, as a user runs it; no errors, and data moved every way.
    /// </summary>
    [NetnsFact]
    public void Iperf3_on_Norman_runs_tcp_and_udp_both_ways_as_server_and_client_against_the_kernels_iperf3_without_errors()
    {
        var peer = _host.Peer();
        foreach (var mode in new[] { ["--bidir"], new[] { "-u", "-b", "100M", "--bidir" } })
        {
            string what = string.Join(' ', mode);
            // Norman serves, the kernel's iperf3 connects. One test per server (-1); UDP needs a connected socket beside
            // the listening one on the port.
            using (var server = NormanRun("iperf3", "-s", "-1", "-p", "5201", "--forceflush"))
            {
                WaitForLine(server, "Server listening");
                var (code, output, errors) = peer.Try(null, ["iperf3", "-c", _host.NormanAddress, "-p", "5201", "-t", "10", "-J", .. mode]);
                Assert.True(code == 0, $"iperf3 {what} against Norman: {output}{errors}");
                AssertMovedBothWays(output, what);
                Assert.True(server.Process.WaitForExit(10_000), $"the iperf3 server on Norman did not end after its test ({what})");
                Assert.Equal(0, server.Process.ExitCode);
            }
            // The kernel's iperf3 serves, Norman's connects.
            using var kernelServer = peer.Start("iperf3", "-s", "-1", "-p", "5202", "--forceflush");
            var listening = kernelServer.StandardOutput.ReadLineAsync(); // iperf3 says it on stdout, after a line of dashes
            for (int lines = 0; lines < 3 && listening.Wait(TimeSpan.FromSeconds(20)) && listening.Result?.Contains("Server listening") != true; lines++)
            {
                listening = kernelServer.StandardOutput.ReadLineAsync();
            }
            Assert.True(listening.IsCompletedSuccessfully && listening.Result?.Contains("Server listening") == true, "the kernel's iperf3 server never listened");
            var (clientCode, clientOutput, clientErrors) = TryUnderNorman(null, ["iperf3", "-c", _host.PeerAddress, "-p", "5202", "-t", "10", "-J", .. mode]);
            Assert.True(clientCode == 0, $"iperf3 {what} from Norman: {clientOutput}{clientErrors}");
            AssertMovedBothWays(clientOutput, what);
        }
    }

    /// <summary>iperf3's JSON report (-J) of a --bidir test: bytes received each way, and no error.</summary>
    private static void AssertMovedBothWays(string report, string what)
    {
        using var json = System.Text.Json.JsonDocument.Parse(report);
        Assert.False(json.RootElement.TryGetProperty("error", out var error), $"iperf3 {what}: {error}");
        var end = json.RootElement.GetProperty("end");
        Assert.True(end.GetProperty("sum_received").GetProperty("bytes").GetInt64() > 0, $"iperf3 {what}: nothing received one way");
        Assert.True(end.GetProperty("sum_received_bidir_reverse").GetProperty("bytes").GetInt64() > 0, $"iperf3 {what}: nothing received the other way");
    }

    [NetnsFact]
    public void Memcached_on_Norman_answers_over_tcp_and_over_udp_from_its_four_worker_threads()
    {
        var peer = _host.Peer();
        using var server = NormanRun("memcached", "-u", "nobody", "-p", "11211", "-U", "11211", "-l", "0.0.0.0", "-t", "4");
        Assert.True(ApplicationProcessTests.WaitFor(() => NormanSs("-t", "-l").Contains(":11211", StringComparison.Ordinal)), "memcached never listened");
        // memcached's UDP frames start with 8 bytes: request id, sequence, datagram count, reserved.
        string client = """
            import socket, struct, sys
            host = sys.argv[1]
            t = socket.create_connection((host, 11211), timeout=10)
            t.sendall(b"set greeting 0 0 5\r\nhello\r\n"); assert t.recv(100) == b"STORED\r\n"
            t.sendall(b"get greeting\r\n"); assert t.recv(100) == b"VALUE greeting 0 5\r\nhello\r\nEND\r\n"
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(10)
            for i in range(50):
                u.sendto(struct.pack("!HHHH", i, 0, 1, 0) + b"get greeting\r\n", (host, 11211))
                data, _ = u.recvfrom(2000)
                assert struct.unpack("!HHHH", data[:8]) == (i, 0, 1, 0) and data[8:] == b"VALUE greeting 0 5\r\nhello\r\nEND\r\n", data
            print("memcached: tcp and 50 udp gets answered")
            """;
        var (code, output, errors) = peer.Try(null, "python3", "-c", client, _host.NormanAddress);
        Assert.True(code == 0, output + errors);
        Assert.Contains("memcached: tcp and 50 udp gets answered", output);
    }

    [NetnsFact]
    public void Nginx_on_Norman_serves_wrk_without_socket_errors_and_curl_10_MB_by_sendfile_byte_for_byte()
    {
        // One process (master_process off; the master and its workers are the next test). Edge-triggered epoll and
        // sendfile, as nginx always uses them.
        var (config, file) = NginxSite("nginx", 8081, "master_process off;");
        using var server = NormanRun("nginx", "-c", config, "-p", Path.GetDirectoryName(config)!);
        Assert.True(ApplicationProcessTests.WaitFor(() => NormanSs("-t", "-l").Contains(":8081", StringComparison.Ordinal)), "nginx never listened");
        AssertNginxServes(8081, file, wrkSeconds: 10); // as issue 18 names it: 10 s, 64 connections
    }

    /// <summary>
    /// nginx as it is run: a master that binds, then forks two workers that drop root and accept. Each worker joins the
    /// listeners it inherited through its own copy of the library; curl gets a 10 MB file (sendfile, from a worker) byte
    /// for byte, and wrk's connections are served without socket errors.
    /// </summary>
    [NetnsFact]
    public void Nginx_with_its_master_and_two_workers_serves_curl_and_wrk()
    {
        var (config, file) = NginxSite("nginx-workers", 8082, "worker_processes 2;");
        using var server = NormanRun("nginx", "-c", config, "-p", Path.GetDirectoryName(config)!);
        // The master's two listeners and each worker's own, once the workers have joined them.
        Assert.True(ApplicationProcessTests.WaitFor(() => Regex.Matches(NormanSs("-t", "-l"), ":8082").Count == 6), NormanSs("-t", "-l", "-p"));
        AssertNginxServes(8082, file);
    }

    /// <summary>An nginx site in the host's directory: a 10 MB file and an index, served on <paramref name="port"/> (both families); its config's path and the file.</summary>
    private (string Config, byte[] File) NginxSite(string name, int port, string processes)
    {
        _host.Peer(); // the daemon and the test namespace, up before nginx starts
        string root = Path.Combine(_host.Directory, name);
        Directory.CreateDirectory(Path.Combine(root, "site"));
        var file = new byte[10 << 20];
        new Random(port).NextBytes(file);
        File.WriteAllBytes(Path.Combine(root, "site", "big.bin"), file);
        File.WriteAllText(Path.Combine(root, "site", "index.html"), "hello from nginx on norman\n");
        string config = Path.Combine(root, "nginx.conf");
        File.WriteAllText(config, $$"""
            daemon off;
            {{processes}}
            error_log {{root}}/error.log;
            pid {{root}}/nginx.pid;
            events { worker_connections 1024; }
            http {
                access_log off;
                sendfile on;
                client_body_temp_path {{root}}/body;
                proxy_temp_path {{root}}/proxy;
                fastcgi_temp_path {{root}}/fastcgi;
                uwsgi_temp_path {{root}}/uwsgi;
                scgi_temp_path {{root}}/scgi;
                server { listen {{port}}; listen [::]:{{port}}; root {{root}}/site; }
            }
            """);
        return (config, file);
    }

    /// <summary>curl from the test namespace gets the 10 MB file byte for byte; wrk's 64 connections get no socket error.</summary>
    private void AssertNginxServes(int port, byte[] file, int wrkSeconds = 3)
    {
        var peer = _host.Peer();
        string fetched = Path.Combine(_host.Directory, $"fetched-{port}.bin");
        peer.Run("curl", "-sS", "--max-time", "30", "-o", fetched, $"http://{_host.NormanAddress}:{port}/big.bin");
        Assert.Equal(file, File.ReadAllBytes(fetched));
        string report = peer.Run("wrk", "-t1", "-c64", $"-d{wrkSeconds}s", $"http://{_host.NormanAddress}:{port}/");
        Assert.DoesNotContain("Socket errors", report);
        Assert.DoesNotContain("Non-2xx", report);
        Assert.Matches(@"Requests/sec:\s+[1-9]", report);
    }

    /// <summary>
    /// Two server processes started apart share a TCP port with SO_REUSEPORT (a second instance beside the first, as
    /// for a restart without downtime): connections from the kernel reach both; with the first gone, the second takes
    /// every new one, none refused.
    /// </summary>
    [NetnsFact]
    public void Two_servers_share_a_tcp_port_with_so_reuseport_and_the_second_takes_over_when_the_first_ends()
    {
        string server = """
            import socket, sys
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("0.0.0.0", 8100)); s.listen(64); print("listening", flush=True)
            while True:
                c, _ = s.accept(); c.sendall(f"server {sys.argv[1]}\n".encode()); c.close()
            """;
        string client = """
            import socket, sys
            seen = set()
            for i in range(32):
                c = socket.create_connection((sys.argv[1], 8100), timeout=10)
                seen.add(c.makefile().readline().strip()); c.close()
            print(" ".join(sorted(seen)))
            """;
        var peer = _host.Peer();
        using var first = NormanRun("python3", "-u", "-c", server, "0");
        WaitForLine(first, "listening");
        using var second = NormanRun("python3", "-u", "-c", server, "1");
        WaitForLine(second, "listening");
        var (code, output, errors) = peer.Try(null, "python3", "-c", client, _host.NormanAddress);
        Assert.True(code == 0, output + errors);
        Assert.Equal("server 0 server 1", output.Trim());

        first.Dispose(); // norman run and its program
        Assert.True(ApplicationProcessTests.WaitFor(() => Regex.Matches(NormanSs("-t", "-l"), ":8100").Count == 1), NormanSs("-t", "-l"));
        (code, output, errors) = peer.Try(null, "python3", "-c", client, _host.NormanAddress);
        Assert.True(code == 0, output + errors);
        Assert.Equal("server 1", output.Trim());
    }

    /// <summary>
    /// A Python server listens and forks a worker, which watches the listener with epoll (as nginx's workers do) and
    /// accepts: the worker joins the listener through a copy of the library of its own and answers the connection the
    /// namespace's kernel opens; the parent, which takes no new connections from then on, waits for it. The worker's
    /// own child then joins in turn (a third copy) and answers the next.
    /// </summary>
    [NetnsFact]
    public void A_forked_worker_joins_the_listener_it_inherited_and_answers_the_kernels_connection()
    {
        var peer = _host.Peer();
        string server = """
            import os, select, socket, sys
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 8200)); s.listen(16)
            def serve(who):
                e = select.epoll(); e.register(s.fileno(), select.EPOLLIN)
                print(who, "ready", flush=True)
                e.poll(30)
                c, _ = s.accept(); c.sendall(f"from the {who}\n".encode()); c.close()
            pid = os.fork()
            if pid == 0:
                serve("worker")
                grandchild = os.fork()  # and its own child joins in turn
                if grandchild == 0:
                    serve("grandchild")
                    sys.exit(0)
                _, status = os.waitpid(grandchild, 0)
                sys.exit(status >> 8)
            _, status = os.waitpid(pid, 0)
            print("worker done", status, flush=True)
            """;
        using var run = NormanRun("python3", "-u", "-c", server);
        foreach (string who in new[] { "worker", "grandchild" })
        {
            WaitForLine(run, $"{who} ready");
            AssertAnswers(peer, 8200, $"from the {who}\n");
        }
        WaitForLine(run, "worker done 0");
    }

    /// <summary>
    /// A server that re-executes itself with its listener at two descriptors (os.execv, a dup, both inheritable): the
    /// program it becomes serves the namespace kernel's connections on both, joining the listener at its first call on
    /// one of them; the daemon kept the listener while the connection of the program before exec closed. When the
    /// process ends, nothing of the listener is left (`norman ss -t -l`).
    /// </summary>
    [NetnsFact]
    public void A_listener_passed_over_exec_is_served_by_the_program_the_process_becomes()
    {
        var peer = _host.Peer();
        string server = """
            import os, socket, sys
            if len(sys.argv) > 1:  # the program exec'd
                for n, fd in enumerate(sys.argv[1:]):
                    s = socket.socket(fileno=int(fd))
                    print("exec'd ready", s.getsockname()[1], flush=True)
                    c, _ = s.accept(); c.sendall(f"from the program exec'd, pid {os.getpid()}, descriptor {n}\n".encode()); c.close()
                print("exec'd done", flush=True)
                sys.exit(0)
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 8210)); s.listen(16)
            s.set_inheritable(True)
            copy = os.dup(s.fileno()); os.set_inheritable(copy, True)
            print("exec'ing", os.getpid(), flush=True)
            os.execv(sys.executable, [sys.executable, "-u", sys.argv[0], str(s.fileno()), str(copy)])
            """;
        string script = Path.Combine(_host.Directory, "reexec.py");
        File.WriteAllText(script, server);
        using var run = NormanRun("python3", "-u", script);
        string pid = run.ReadLine().Split(' ')[1];
        foreach (int n in new[] { 0, 1 })
        {
            WaitForLine(run, "exec'd ready 8210");
            AssertAnswers(peer, 8210, $"from the program exec'd, pid {pid}, descriptor {n}\n");
        }
        WaitForLine(run, "exec'd done");
        Assert.True(run.Process.WaitForExit(20_000), "the program exec'd never ended");
        Assert.True(ApplicationProcessTests.WaitFor(() => !NormanSs("-t", "-l").Contains(":8210", StringComparison.Ordinal)),
            "the listener kept across exec outlived its process: " + NormanSs("-t", "-l"));
    }

    /// <summary>
    /// A server that spawns a worker with its listener (subprocess with pass_fds: vfork or fork, then exec, the parent
    /// living on): the worker joins the listener and serves the namespace kernel's connection; the parent, which takes
    /// no new connections from then on, waits for it.
    /// </summary>
    [NetnsFact]
    public void A_listener_passed_to_a_spawned_program_is_served_by_it_while_the_parent_lives_on()
    {
        _host.Peer(); // the namespace and the daemon, before the program starts
        string program = """
            import os, socket, subprocess, sys
            if len(sys.argv) > 1:  # the spawned worker
                s = socket.socket(fileno=int(sys.argv[1]))
                print("worker ready", flush=True)
                c, _ = s.accept(); c.sendall(b"from the spawned worker\n"); c.close()
                sys.exit(0)
            s = socket.socket()
            s.bind(("0.0.0.0", 8211)); s.listen(16)
            worker = subprocess.Popen([sys.executable, "-u", sys.argv[0], str(s.fileno())], pass_fds=[s.fileno()])
            print("worker exit", worker.wait(), flush=True)
            """;
        string script = Path.Combine(_host.Directory, "spawner.py");
        File.WriteAllText(script, program);
        using var run = NormanRun("python3", "-u", script);
        AssertWorkerAnswers(run, 8211, "from the spawned worker\n", "worker exit 0");
    }

    /// <summary>
    /// Socket activation as systemd does it (Debian's systemd-socket-activate: it listens, waits for the first
    /// connection, then execs the program with the listener at descriptor 3 and LISTEN_FDS=1): the program answers that
    /// first connection, which the activator's stack had made and handed over across exec, with the line the namespace's
    /// socat sent before the exec, and the next connection too.
    /// </summary>
    [NetnsFact]
    public void Socket_activation_hands_the_program_it_execs_the_listener_and_the_connection_that_woke_it()
    {
        var peer = _host.Peer();
        string program = """
            import os, socket
            assert os.environ["LISTEN_FDS"] == "1", os.environ.get("LISTEN_FDS")
            s = socket.socket(fileno=3)
            for n in range(2):
                c, _ = s.accept()
                line = c.makefile().readline().strip()
                c.sendall(f"connection {n}: {line}\n".encode()); c.close()
            """;
        string script = Path.Combine(_host.Directory, "activated.py");
        File.WriteAllText(script, program);
        using var run = NormanRun("systemd-socket-activate", "-l", "0.0.0.0:8212", "python3", "-u", script);
        Host.WaitForError(run.Process, "Listening on", TimeSpan.FromSeconds(20));
        foreach (int n in new[] { 0, 1 })
        {
            var (code, output, errors) = peer.Try($"hello {n}\n", "socat", "-t", "10", "-", $"TCP4:{_host.NormanAddress}:8212");
            Assert.True(code == 0, errors);
            Assert.Equal($"connection {n}: hello {n}\n", output);
        }
    }

    /// <summary>
    /// A program that execs another with an environment made from nothing (env -i) still has it run on Norman, as
    /// `norman run`'s preload is kept across exec: the child's UDP socket reaches the namespace's echo (through Norman's
    /// TAP, the only way there).
    /// </summary>
    [NetnsFact]
    public void A_program_execd_with_an_empty_environment_is_still_under_norman_run()
    {
        using var echo = UdpEcho(7009);
        string program = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(10)
            s.sendto(b"through norman", (sys.argv[1], 7009))
            print(s.recvfrom(64)[0].decode(), flush=True)
            """;
        var (code, output, errors) = TryUnderNorman(null, "env", "-i", "/usr/bin/python3", "-c", program, _host.PeerAddress);
        Assert.True(code == 0, errors);
        Assert.Equal("through norman\n", output);
    }

    /// <summary>
    /// A program linked with a library whose constructor reads a file before the interposer's constructor has run
    /// (systemd-socket-activate, through libcap-ng): the interposer resolves libc then, where it called a null pointer.
    /// </summary>
    [Fact]
    public async Task A_program_whose_libraries_read_files_before_the_interposer_starts_runs()
    {
        await using var daemon = new DaemonFixture();
        var (code, output, errors) = Host.Try(null, "env", $"NORMAN_SOCKET={daemon.SocketPath}", AppProcess.BesideTests("norman"), "run", "--",
            "systemd-socket-activate", "--version");
        Assert.True(code == 0, $"exit {code}: {errors}");
        Assert.Contains("systemd", output);
    }

    /// <summary>
    /// A prefork server whose worker waits on the listener it inherited with select before accepting (gunicorn's sync
    /// workers do): the worker joins the listener at its select, so the namespace kernel's connection comes to it, not
    /// to its parent's listener, which never accepts.
    /// </summary>
    [NetnsFact]
    public void A_forked_worker_that_selects_on_the_listener_it_inherited_gets_the_connections()
    {
        _host.Peer(); // the namespace and the daemon, before the program starts
        string server = """
            import os, select, socket, sys
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 8213)); s.listen(16)
            s.setblocking(False)
            pid = os.fork()
            if pid == 0:
                select.select([s], [], [], 0)  # a worker's loop waits with a timeout, again and again
                print("worker ready", flush=True)
                ready, _, _ = select.select([s], [], [], 30)
                c, _ = s.accept(); c.setblocking(True); c.sendall(b"from the selecting worker\n"); c.close()
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            print("worker done", status, flush=True)
            """;
        using var run = NormanRun("python3", "-u", "-c", server);
        AssertWorkerAnswers(run, 8213, "from the selecting worker\n");
    }

    /// <summary>
    /// The same in C as distributions build it (-O2 -D_FORTIFY_SOURCE=2: the worker's poll is glibc's __poll_chk, which
    /// the interposer wraps too): the worker polls the listener it inherited, joins it there, and answers.
    /// </summary>
    [NetnsFact]
    public void A_forked_c_worker_built_fortified_that_polls_the_listener_it_inherited_gets_the_connection()
    {
        _host.Peer(); // the namespace and the daemon, before the program starts
        string program = NativeArtifacts.Compile("tests/Norman.Integration.Tests/native/poll_worker.c", _host.Directory, "-O2", "-D_FORTIFY_SOURCE=2");
        Assert.Contains("__poll_chk", Host.Run("nm", "-D", program)); // the path under test
        using var run = NormanRun(program, "8215");
        AssertWorkerAnswers(run, 8215, "from the polling worker\n");
    }

    /// <summary>
    /// gunicorn as it is run (Debian's): a master that binds, then forks two sync workers, each of which selects on the
    /// listener it inherited, then accepts. Once the workers have joined (ss lists their listeners beside the master's),
    /// curl's requests are each answered by a worker.
    /// </summary>
    [NetnsFact]
    public void Gunicorn_with_two_sync_workers_answers_curl()
    {
        var peer = _host.Peer();
        File.WriteAllText(Path.Combine(_host.Directory, "hello.py"), """
            import os
            def app(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [f"from worker {os.getpid()}\n".encode()]
            """);
        using var server = NormanRun("gunicorn", "--workers", "2", "--bind", "0.0.0.0:8214", "--chdir", _host.Directory, "hello:app");
        // The master's listener and each worker's own, once both workers have joined at their first select.
        Assert.True(ApplicationProcessTests.WaitFor(() => Regex.Matches(NormanSs("-t", "-l"), ":8214").Count == 3), NormanSs("-t", "-l", "-p"));
        for (int i = 0; i < 10; i++)
        {
            var (code, output, errors) = peer.Try(null, "curl", "-sS", "--max-time", "10", $"http://{_host.NormanAddress}:8214/");
            Assert.True(code == 0, errors);
            Assert.Matches(@"^from worker \d+\n$", output);
        }
    }

    /// <summary>
    /// A connection the master's stack made before it forked its worker (a client that came while the server started):
    /// the master never accepts, so when the worker joins, the master's stack hands the connection over, the worker
    /// accepts it with the line and the FIN the client had sent, and answers.
    /// </summary>
    [NetnsFact]
    public void A_connection_made_before_the_master_forked_its_worker_is_answered_by_the_worker()
    {
        var peer = _host.Peer();
        string server = """
            import os, socket, sys
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 8216)); s.listen(16)
            print("listening", flush=True)
            sys.stdin.readline()  # a connection waits in the listener's queue by then
            pid = os.fork()
            if pid == 0:
                c, _ = s.accept()
                line = c.makefile().readline().strip()
                c.sendall(f"worker got: {line}\n".encode()); c.close()
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            print("worker done", status >> 8, flush=True)
            """;
        using var run = NormanRun("python3", "-u", "-c", server);
        WaitForLine(run, "listening");
        var client = peer.Start(redirectInput: true, "socat", "-t", "10", "-", $"TCP4:{_host.NormanAddress}:8216");
        client.StandardInput.Write("hello\n");
        client.StandardInput.Close(); // the line, then the FIN
        Assert.True(ApplicationProcessTests.WaitFor(() => Regex.IsMatch(NormanSs("-t", "-a"), @"(ESTAB|CLOSE-WAIT)\s.*:8216\s")),
            NormanSs("-t", "-a"));
        run.Process.StandardInput.WriteLine("fork");
        run.Process.StandardInput.Flush();
        Assert.True(client.WaitForExit(20_000), "the client never had its answer");
        Assert.Equal("worker got: hello\n", client.StandardOutput.ReadToEnd());
        WaitForLine(run, "worker done 0");
    }

    /// <summary>The namespace's socat connects to Norman's <paramref name="port"/>, sends nothing, and reads <paramref name="expected"/> to the end.</summary>
    private void AssertAnswers(TestNamespace peer, int port, string expected)
    {
        var (code, output, errors) = peer.Try(null, "socat", "-t", "5", "-", $"TCP4:{_host.NormanAddress}:{port}");
        Assert.True(code == 0, errors);
        Assert.Equal(expected, output);
    }

    /// <summary>A worker that says "worker ready", answers the namespace's connection to <paramref name="port"/> with <paramref name="expected"/>, then says <paramref name="end"/>.</summary>
    private void AssertWorkerAnswers(AppProcess run, int port, string expected, string end = "worker done 0")
    {
        WaitForLine(run, "worker ready");
        AssertAnswers(_host.Peer(), port, expected);
        WaitForLine(run, end);
    }

    private static void WaitForLine(AppProcess process, string text)
    {
        for (int lines = 0; lines < 200; lines++)
        {
            if (process.ReadLine().Contains(text, StringComparison.Ordinal))
            {
                return;
            }
        }
        Assert.Fail($"{process.Process.StartInfo.FileName} never printed '{text}'");
    }

    [Fact]
    public void Without_a_daemon_norman_run_refuses_and_says_how_to_start_one_or_fall_back()
    {
        string absent = Path.Combine(_host.Directory, "absent.sock");
        var (code, _, errors) = Host.Try(null, AppProcess.BesideTests("norman"), "run", "--socket", absent, "--", "true");
        Assert.Equal(69, code);
        Assert.Contains("not running", errors);
        Assert.Contains("--fallback kernel", errors);
        (code, var output, errors) = Host.Try(null, AppProcess.BesideTests("norman"), "run", "--socket", absent, "--fallback", "kernel", "--", "echo", "on the kernel");
        Assert.Equal(0, code);
        Assert.Equal("on the kernel\n", output);
        Assert.Contains("warning", errors);
    }

    /// <summary>
    /// A bind the daemon refuses for a limit (here its user's pipe memory) fails with ENOMEM, as the program expects, and
    /// the daemon's sentence (which limit, what raises it) is said once on stderr, where the program says only "Cannot
    /// allocate memory".
    /// </summary>
    [Fact]
    public async Task A_bind_over_a_users_limit_fails_with_enomem_and_the_daemons_sentence_says_what_raises_it()
    {
        await using var daemon = new DaemonFixture(configure: options => options.MaxPipeBytesPerUid = 10 << 20);
        string program = """
            import socket
            held, refused = [], set()
            for port in range(7400, 7410):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.bind(("0.0.0.0", port)); held.append(s)
                except OSError as error:
                    refused.add(error.errno)
            print("held", len(held), "refused", sorted(refused), flush=True)
            """;
        var (code, output, errors) = Host.Try(null, "env", $"NORMAN_SOCKET={daemon.SocketPath}", AppProcess.BesideTests("norman"), "run", "--",
            "python3", "-c", program);
        Assert.True(code == 0, errors);
        Assert.Matches(@"^held [1-8] refused \[12\]\n$", output); // ENOMEM, for each of the others
        Assert.Contains("--max-pipe-memory-per-uid", errors);
        Assert.Single(Regex.Matches(errors, "max-pipe-memory-per-uid"));
    }

    [Fact]
    public async Task Norman_run_passes_on_the_programs_exit_code_and_a_missing_program_is_127()
    {
        await using var daemon = new DaemonFixture();
        var (code, _, _) = Host.Try(null, "env", $"NORMAN_SOCKET={daemon.SocketPath}", AppProcess.BesideTests("norman"), "run", "--", "sh", "-c", "exit 3");
        Assert.Equal(3, code);
        (code, _, var errors) = Host.Try(null, "env", $"NORMAN_SOCKET={daemon.SocketPath}", AppProcess.BesideTests("norman"), "run", "--", "no-such-program-here");
        Assert.Equal(127, code);
        Assert.Contains("cannot run no-such-program-here", errors);
    }

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();
}
