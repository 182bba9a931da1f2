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
        var chain = new Argument<string>("CHAIN") { Description = "ingress or egress." };
        var packet = new Argument<string[]>("PACKET")
        {
            Description = "The packet: [udp|tcp] [saddr A] [daddr A] [sport P] [dport P] [payload BYTES]; the addresses default to the peer and this host.",
            Arity = ArgumentArity.OneOrMore,
        };
        var command = new Command("trace", "Walk the filter over a described packet and show each rule evaluated and the verdict.\n\n" +
            "Example:\n  norman trace ingress udp saddr 198.18.0.2 sport 40000 dport 80")
        {
            socket, json, chain, packet,
        };
        command.SetAction(result =>
        {
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
}
