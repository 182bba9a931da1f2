using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Norman.Client;
using Norman.Core.Protocol;

namespace Norman.Cli.Commands;

/// <summary>`norman trace`: which rule decides a packet, and why — rule by rule, with the packet's owner.</summary>
public static class TraceCommand
{
    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket." };
        var json = new Option<bool>("--json") { Description = "Print the trace as JSON." };
        var live = new Option<bool>("--live") { Description = "Trace the next packets that cross the dataplane and match the expression (libpcap syntax)." };
        var count = new Option<int>("--count", "-c") { Description = "With --live: how many packets to trace.", DefaultValueFactory = _ => 10 };
        var timeout = new Option<double>("--timeout") { Description = "With --live: stop after this many seconds.", DefaultValueFactory = _ => 30 };
        var chain = new Argument<string>("CHAIN") { Description = "ingress or egress (a described packet); with --live, the first word of the expression." };
        var packet = new Argument<string[]>("PACKET")
        {
            Description = "The packet: [udp|tcp] [saddr A] [daddr A] [sport P] [dport P] [payload BYTES]; the addresses default to the peer and this host. " +
                "With --live: the rest of the libpcap expression.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var command = new Command("trace", "Show which rule decides a packet, and why: each rule evaluated, the verdict and the owning application.\n\n" +
            "Examples:\n  norman trace ingress udp saddr 198.18.0.2 sport 40000 dport 80\n  norman trace --live -c 5 udp port 80")
        {
            socket, json, live, count, timeout, chain, packet,
        };
        command.SetAction(async (result, cancellation) =>
        {
            if (result.GetValue(live))
            {
                string expression = string.Join(' ', new[] { result.GetValue(chain)! }.Concat(result.GetValue(packet) ?? []));
                return await LiveAsync(result.GetValue(socket), expression, result.GetValue(count), result.GetValue(timeout), cancellation);
            }
            try
            {
                using var control = ControlChannel.Connect(result.GetValue(socket));
                var trace = control.Call(new ControlRequest
                {
                    Op = ControlProtocol.Ops.FilterTrace,
                    Chain = result.GetValue(chain),
                    Rule = result.GetValue(packet)!.ToList(),
                }).Trace!;
                if (result.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(trace, ControlJson.Default.TraceInfo));
                    return 0;
                }
                Console.WriteLine($"trace {trace.Packet} ({trace.Owner})");
                foreach (var step in trace.Steps)
                {
                    string outcome = step.Matched ? $"match → {step.Note}" : step.Note.Length > 0 ? step.Note : "no match";
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  rule {step.Rule,-48} (handle {step.Handle})  {outcome}"));
                }
                Console.WriteLine($"verdict {trace.Verdict}");
                return 0;
            }
            catch (NormanException error)
            {
                Console.Error.WriteLine($"norman trace: {error.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>Starts a live trace and prints the traced packets as they come, until enough came, time is up or Ctrl-C.</summary>
    private static async Task<int> LiveAsync(string? socketPath, string expression, int count, double seconds, CancellationToken cancellation)
    {
        try
        {
            using var control = ControlChannel.Connect(socketPath);
            control.Call(new ControlRequest { Op = ControlProtocol.Ops.FilterTraceStart, Expression = expression, Count = count });
            Console.Error.WriteLine($"tracing the next {count} packets matching '{expression}' (Ctrl-C to stop)");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            int seen = 0;
            try
            {
                while (seen < count && clock.Elapsed.TotalSeconds < seconds && !cancellation.IsCancellationRequested)
                {
                    var trace = control.Call(new ControlRequest { Op = ControlProtocol.Ops.FilterTracePoll }).Trace!;
                    foreach (var line in trace.Events ?? [])
                    {
                        Console.WriteLine(line);
                        seen++;
                    }
                    if (seen < count)
                    {
                        await Task.Delay(100, cancellation);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // Ctrl-C: stop the trace below.
            }
            control.Call(new ControlRequest { Op = ControlProtocol.Ops.FilterTraceStop });
            Console.Error.WriteLine($"{seen} packets traced");
            return 0;
        }
        catch (NormanException error)
        {
            Console.Error.WriteLine($"norman trace: {error.Message}");
            return error.Code == "EPERM" ? 77 : 1;
        }
    }
}
