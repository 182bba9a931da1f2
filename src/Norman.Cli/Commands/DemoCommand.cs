using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Cli.Commands;

/// <summary>
/// `norman demo`: the story of DESIGN.md on the virtual wire. A daemon (in this process, with the simulated peer
/// host at the far end of its wire), Alice's database and Bob's bulk sender as processes of their own, traffic both
/// ways, and `norman ss -lp` answering who owns which port; then a rogue web server, found with ss and blocked with
/// one filter rule by application name. Cleans up everything it started.
/// </summary>
public static class DemoCommand
{
    private const ushort DatabasePort = 6379;
    /// <summary>The rogue server's side of one HTTP/1.0 exchange: the SYN, its answer, the request and the page.</summary>
    private const int CapturedPackets = 4;

    public static Command Create()
    {
        var seconds = new Option<double>("--seconds") { Description = "How long each phase of the QoS story lasts.", DefaultValueFactory = _ => 2 };
        var command = new Command("demo", "Run the story: a database and Bob's bulk sender on Norman, QoS between them, a rogue server found, " +
            "captured and blocked; the administrator's view of each step.\n\nExample:\n  norman demo")
        {
            seconds,
        };
        command.SetAction(async (result, _) => await RunAsync(result.GetValue(seconds)));
        return command;
    }

    private static async Task<int> RunAsync(double phaseSeconds)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-demo-{Environment.ProcessId}");
        Directory.CreateDirectory(directory);
        string socketPath = Path.Combine(directory, "norman.sock");
        var started = new List<Process>();
        // The demo's user administers its own daemon (as the admin group), so the filter step works without root.
        var options = new DaemonOptions { SocketPath = socketPath, LineRateBitsPerSecond = 1_000_000_000, AdminGroup = CurrentGid() };
        Step("Alice starts Norman on a 1 Gbit/s virtual wire (the peer host is 198.18.0.2):",
            $"norman up --socket {socketPath} --line-rate 1G");
        var daemon = NormanDaemon.Start(options, NullLog.Instance);
        var peer = daemon.Peer!;
        Console.WriteLine($"normand: port {daemon.Engine.Port.Name}, address {daemon.Engine.Host}, MAC {daemon.Engine.Host.Mac}");
        try
        {
            Step("Alice's database starts, on Norman's kernel-bypass pipes:", $"NORMAN_SOCKET={socketPath} kvdb {DatabasePort}");
            var database = Launch("kvdb", [DatabasePort.ToString(CultureInfo.InvariantCulture)], socketPath, started);
            Console.WriteLine(await FirstLineAsync(database));
            Step("A client on the peer host talks to it over TCP (the database's TCP stack is in its own process):",
                $"printf 'SET greeting hello\\nGET greeting\\nQUIT\\n' | nc {peer.HostAddress} {DatabasePort}");
            var session = await peer.ExchangeTcpAsync(DatabasePort, "SET greeting hello\nGET greeting\nQUIT\n"u8.ToArray(), TimeSpan.FromSeconds(10));
            if (session.Outcome != Norman.Daemon.Dataplane.Ports.PeerTcpOutcome.Answered)
            {
                throw new InvalidOperationException($"The database's TCP service did not answer ({session.Outcome}).");
            }
            Console.Write(Indent(Encoding.ASCII.GetString(session.Answer)));

            await DemoQosStory.RunAsync(daemon, socketPath, started, phaseSeconds);

            Step("Alice asks: which application holds which port?", "norman ss -lp");
            Console.Write(await RunSelfAsync(["ss", "-lp", "--socket", socketPath]));
            Step("…and who listens on the database's port?", $"norman ss -lpn sport = :{DatabasePort}");
            Console.Write(await RunSelfAsync(["ss", "-lpn", "--socket", socketPath, "sport", "=", $":{DatabasePort}"]));
            Step("One ss for both stacks: the kernel's own UDP listeners beside Norman's, and the path each takes:", "norman ss -lnu --kernel");
            Console.Write(await RunSelfAsync(["ss", "-lnu", "--kernel", "--socket", socketPath]));
            Step("What each socket did, every counter at once (Prometheus gets the same with `norman up --metrics`):", "norman stats");
            Console.Write(await RunSelfAsync(["stats", "--socket", socketPath]));

            await RogueServerAsync(daemon, socketPath, started);

            var bob = started.Single(p => p.StartInfo.FileName.EndsWith("/bobapp", StringComparison.Ordinal));
            if (!bob.WaitForExit(TimeSpan.FromSeconds(2 * phaseSeconds + 20)))
            {
                throw new TimeoutException("bobapp did not finish in time.");
            }
            Console.WriteLine((await bob.StandardOutput.ReadToEndAsync()).TrimEnd());
            long wireBytes = daemon.Engine.Counters.PortTxBytes;
            Console.WriteLine($"  the wire carried {wireBytes * 8 / 1e6:F0} Mbit from this host; the peer's discard port received {peer.SunkPackets} of Bob's datagrams");
        }
        finally
        {
            foreach (var process in started)
            {
                if (!process.HasExited)
                {
                    process.Kill();
                }
                process.WaitForExit(5000);
                process.Dispose();
            }
            await daemon.DisposeAsync();
            Directory.Delete(directory, recursive: true);
        }
        int leftovers = Directory.GetFiles("/proc/self/fd").Count(fd => LinkTarget(fd).StartsWith("/memfd:norman", StringComparison.Ordinal));
        Step("The demo stopped everything it started:", "");
        Console.WriteLine($"  {started.Count} application processes ended, daemon stopped, {leftovers} Norman memfds left open.");
        return leftovers == 0 ? 0 : 1;
    }

    /// <summary>The second half of the story: a server nobody wanted, found with ss and stopped with one rule.</summary>
    private static async Task RogueServerAsync(NormanDaemon daemon, string socketPath, List<Process> started)
    {
        var peer = daemon.Peer!;
        // Port 80 needs root or CAP_NET_BIND_SERVICE, for the rogue as for anyone; without them the story uses 8080.
        ushort port = Environment.UserName == "root" ? (ushort)80 : (ushort)8080;
        Step("Someone who guessed a weak password starts a web server (TCP, its own stack, no kernel socket):", $"rogue-httpd {port}");
        var rogue = Launch("rogue-httpd", [port.ToString(CultureInfo.InvariantCulture)], socketPath, started);
        Console.WriteLine(await FirstLineAsync(rogue));

        string pcapng = Path.Combine(Path.GetTempPath(), $"norman-demo-rogue-{Environment.ProcessId}.pcapng");
        Step("Alice records what it says, each packet tagged with its application (the kernel never saw these packets):",
            $"norman capture -c {CapturedPackets} -p app=rogue-httpd --pcapng -w {pcapng}");
        var capture = StartSelf(["capture", "--socket", socketPath, "--timeout", "20", "-c", CapturedPackets.ToString(CultureInfo.InvariantCulture),
            "-p", "app=rogue-httpd", "--pcapng", "-w", pcapng]);
        for (var clock = Stopwatch.StartNew(); daemon.Engine.TapCount == 0 && clock.Elapsed < TimeSpan.FromSeconds(20);)
        {
            await Task.Delay(10); // the capture is a process of its own: wait until its tap is in the dataplane
        }
        var page = await peer.ExchangeTcpAsync(port, "GET / HTTP/1.0\r\n\r\n"u8.ToArray(), TimeSpan.FromSeconds(10));
        if (page.Outcome != Norman.Daemon.Dataplane.Ports.PeerTcpOutcome.Answered)
        {
            throw new InvalidOperationException($"rogue-httpd did not answer ({page.Outcome}).");
        }
        Console.WriteLine($"  the peer host's request was answered: {Encoding.ASCII.GetString(page.Answer).Split('\r')[0]}");
        Console.Write(await capture.StandardError.ReadToEndAsync());
        await capture.WaitForExitAsync();
        Console.WriteLine($"  open it with:  tshark -r {pcapng} -T fields -e frame.comment -e _ws.col.Info");
        Console.WriteLine($"           or:  wireshark {pcapng}      or:  tcpdump -n -r {pcapng}");

        Step($"Alice asks: which application is listening on port {port}?", $"norman ss -lp sport = :{port}");
        Console.Write(await RunSelfAsync(["ss", "-lp", "--socket", socketPath, "sport", "=", $":{port}"]));

        Step("Alice blocks it by application name — its packets never reach the kernel, but they cross Norman:",
            "norman filter add ingress tcp app rogue-httpd reject with tcp reset");
        Console.Write(await RunSelfAsync(["filter", "--socket", socketPath, "add", "ingress", "tcp", "app", "rogue-httpd", "reject", "with", "tcp", "reset"]));

        var blocked = await peer.ExchangeTcpAsync(port, "GET / HTTP/1.0\r\n\r\n"u8.ToArray(), TimeSpan.FromSeconds(5));
        Step("The peer host asks again:", "");
        Console.WriteLine(blocked.Outcome == Norman.Daemon.Dataplane.Ports.PeerTcpOutcome.Refused
            ? "  no page; the request was refused (connection refused: a TCP reset), as nft's 'reject with tcp reset' would"
            : $"  UNEXPECTED: {blocked.Outcome}");
        if (blocked.Outcome != Norman.Daemon.Dataplane.Ports.PeerTcpOutcome.Refused)
        {
            throw new InvalidOperationException("The filter rule did not stop the rogue server.");
        }
        Step("…and the filter shows what it stopped:", "norman filter list");
        Console.Write(await RunSelfAsync(["filter", "--socket", socketPath, "list"]));
        Step("Which rule decides a request to that port, and why?", $"norman trace ingress tcp dport {port}");
        Console.Write(await RunSelfAsync(["trace", "--socket", socketPath, "ingress", "tcp", "dport", port.ToString(CultureInfo.InvariantCulture)]));
    }

    private static string Indent(string lines) => string.Concat(lines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => $"  {line}\n"));

    private static int CurrentGid()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Gid:", StringComparison.Ordinal))
            {
                return int.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    internal static void Step(string story, string command)
    {
        Console.WriteLine();
        Console.WriteLine($"# {story}");
        if (command.Length > 0)
        {
            Console.WriteLine($"$ {command}");
        }
    }

    internal static Process Launch(string program, string[] arguments, string socketPath, List<Process> started)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, program))
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["NORMAN_SOCKET"] = socketPath;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        started.Add(process);
        return process;
    }

    internal static async Task<string> FirstLineAsync(Process process)
    {
        var line = process.StandardOutput.ReadLineAsync();
        if (await Task.WhenAny(line, Task.Delay(TimeSpan.FromSeconds(20))) != line || line.Result is null)
        {
            throw new TimeoutException($"{process.StartInfo.FileName} did not start within 20 s.");
        }
        return line.Result;
    }

    private static Process StartSelf(string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        return Process.Start(start)!;
    }

    internal static async Task<string> RunSelfAsync(string[] arguments)
    {
        using var process = StartSelf(arguments);
        string output = await process.StandardOutput.ReadToEndAsync();
        string errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return output + errors;
    }

    private static string LinkTarget(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget ?? "";
        }
        catch (IOException)
        {
            return "";
        }
    }
}
