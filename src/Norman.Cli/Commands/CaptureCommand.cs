using System.CommandLine;
using System.Diagnostics;
using Norman.Cli.Capture;
using Norman.Client;
using Norman.Core.Capture;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Cli.Commands;

/// <summary>
/// `norman capture`: tcpdump for the traffic that bypasses the kernel. A tap in the dataplane with a libpcap
/// filter and its own shared-memory ring; this command reads the ring and writes pcap, pcapng or tcpdump-style
/// lines, each packet with the application that owns it.
/// </summary>
public static class CaptureCommand
{
    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket." };
        var point = new Option<string>("--interface", "-i") { Description = "Where to capture: ingress (after parsing, before the filter), egress (after the filter), any (both), " +
            "or port (every frame as the port received it, drops marked with their reason, and every frame sent).", DefaultValueFactory = _ => "any" };
        var file = new Option<string?>("--write", "-w") { Description = "Write packets to a file (pcap; pcapng with --pcapng); - for standard output." };
        var pcapng = new Option<bool>("--pcapng") { Description = "Write pcapng, whose packet comments name the owning application." };
        var count = new Option<long>("--count", "-c") { Description = "Stop after this many packets (0: until Ctrl-C).", DefaultValueFactory = _ => 0 };
        count.Validators.Add(result => { if (result.GetValueOrDefault<long>() < 0) result.AddError("-c takes a count of packets, 0 or more (0: until Ctrl-C)."); });
        var snap = new Option<int>("--snapshot-length", "-s") { Description = "Bytes to keep of each packet.", DefaultValueFactory = _ => CaptureRecord.MaxSnapLength };
        var numeric = new Option<bool>("-n") { Description = "Do not resolve addresses (Norman never does; accepted for tcpdump's habit)." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Say what is captured, and where, before the packets." };
        var linkLayer = new Option<bool>("-e") { Description = "Print the link-layer header on each line." };
        var ascii = new Option<bool>("-A") { Description = "Print each packet in ASCII." };
        var hex = new Option<bool>("-X") { Description = "Print each packet in hex and ASCII." };
        var app = new Option<string?>("-p") { Description = "Only this application's packets: app=NAME." };
        var afterFilter = new Option<bool>("--after-filter") { Description = "Capture on ingress after the filter: only what it let through (by default packets it stopped are captured too, marked)." };
        var timeout = new Option<double>("--timeout") { Description = "Stop after this many seconds (0: never).", DefaultValueFactory = _ => 0 };
        timeout.Validators.Add(result => { if (!(result.GetValueOrDefault<double>() >= 0)) result.AddError("--timeout takes seconds, 0 or more (0: never)."); });
        var expression = new Argument<string[]>("EXPRESSION") { Description = "A libpcap filter expression, as tcpdump takes.", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("capture", "Capture Norman's traffic as tcpdump does, each packet tagged with its application.\n\n" +
            "Examples:\n  norman capture -c 10 udp port 80\n  norman capture -w web.pcapng --pcapng -p app=rogue-httpd\n" +
            "  norman capture -w - | tcpdump -r -")
        {
            socket, point, file, pcapng, count, snap, numeric, verbose, linkLayer, ascii, hex, app, afterFilter, timeout, expression,
        };
        command.SetAction(async (result, cancellation) =>
        {
            string? appName = result.GetValue(app) is { } p ? (p.StartsWith("app=", StringComparison.Ordinal) ? p[4..] : p) : null;
            var request = new ControlRequest
            {
                Op = ControlProtocol.Ops.CaptureStart,
                Chain = result.GetValue(point),
                Expression = string.Join(' ', result.GetValue(expression) ?? []),
                SnapLength = result.GetValue(snap),
                App = appName,
                AfterFilter = result.GetValue(afterFilter),
            };
            try
            {
                return await RunAsync(result.GetValue(socket), request, result.GetValue(file), result.GetValue(pcapng), result.GetValue(count),
                    result.GetValue(timeout), result.GetValue(verbose), (result.GetValue(linkLayer), result.GetValue(ascii), result.GetValue(hex)), cancellation);
            }
            catch (Exception error) when (error is NormanException or IOException or UnauthorizedAccessException)
            {
                return CommandErrors.Report(result.CommandResult.Command, error);
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(string? socketPath, ControlRequest request, string? file, bool pcapng, long limit, double seconds,
        bool verbose, (bool LinkLayer, bool Ascii, bool Hex) text, CancellationToken cancellation)
    {
        // The file first: a path that cannot be written is the user's mistake to hear about before anything starts.
        using var output = CaptureOutput.Open(file, pcapng, text);
        using var control = ControlChannel.Connect(socketPath);
        var fds = new List<int>();
        var answer = control.Call(request, fds);
        var capture = answer.Capture!;
        foreach (string note in answer.Notes ?? [])
        {
            Console.Error.WriteLine($"norman capture: note: {note}");
        }
        using var region = SharedMemory.Map(fds[0], capture.RegionBytes);
        using var wakeup = WakeupReceiver.Adopt(fds[1]);
        var ring = CreateConsumer(region, capture);
        var writer = output.CreateWriter(capture.SnapLength);
        if (verbose || output.IsFile)
        {
            Console.Error.WriteLine($"norman capture: listening on {request.Chain}, filter '{request.Expression}', snapshot length {capture.SnapLength} bytes" +
                (capture.OwnPacketsOnly ? " (your own applications' packets only: you are not an administrator)" : ""));
        }
        long captured = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            while ((limit == 0 || captured < limit) && !cancellation.IsCancellationRequested && (seconds <= 0 || clock.Elapsed.TotalSeconds < seconds))
            {
                int available = ring.Available();
                for (int i = 0; i < available && (limit == 0 || captured < limit); i++)
                {
                    writer.Write(CaptureRecord.Read(ring.Peek()));
                    ring.Advance();
                    captured++;
                }
                ring.Publish();
                if (available > 0)
                {
                    output.Flush(); // a batch at a time, so that `| head` and `tcpdump -r -` see packets as they come
                }
                if (available == 0 && ring.PrepareToSleep() && !wakeup.Wait(100) && control.IsDaemonGone())
                {
                    throw new NormanDaemonUnavailableException($"The Norman daemon at {control.Path} went away; the capture ends.");
                }
                await Task.Yield();
            }
            writer.Finish();
        }
        catch (IOException) when (output.IsBrokenPipe)
        {
            // The reader went away (`| head -2`): stop as tcpdump does, and still say what was seen.
        }
        var stats = control.Call(new ControlRequest { Op = ControlProtocol.Ops.CaptureStats, Handle = capture.TapId }).Capture!;
        Console.Error.WriteLine($"{captured} packets captured");
        Console.Error.WriteLine($"{stats.Captured} packets received by filter");
        Console.Error.WriteLine($"{stats.Dropped} packets dropped by kernel");
        return 0;
    }

    private static unsafe RingConsumer CreateConsumer(SharedMemory region, CaptureInfo capture)
    {
        if (!RingInitializer.Matches(region.Address, capture.SlotCount, capture.SlotSize))
        {
            throw new NormanException("EPROTO", "The capture ring does not match the daemon's description: a daemon of another release?");
        }
        return new RingConsumer(region.Address, capture.SlotCount, capture.SlotSize);
    }
}
