using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Norman.Core.Protocol;

namespace Norman.Cli.Commands;

/// <summary>`norman conntrack`: the connections the filter's `ct state` tracks, listed as `conntrack -L` lists the kernel's.</summary>
public static class ConntrackCommand
{
    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket (default: $NORMAN_SOCKET, else /run/norman/norman.sock)." };
        var list = new Option<bool>("--dump", "-L") { Description = "List the table (the default; as conntrack's -L)." };
        var protocol = new Option<string?>("--proto", "-p") { Description = "Only this protocol's flows: tcp, udp, icmp or icmpv6." };
        protocol.AcceptOnlyFromAmong("tcp", "udp", "icmp", "icmpv6");
        var family = new Option<string?>("--family", "-f") { Description = "Only this family's flows: ipv4 or ipv6 (default: both)." };
        family.AcceptOnlyFromAmong("ipv4", "ipv6");
        var json = new Option<bool>("--json") { Description = "Print the table as JSON." };
        var command = new Command("conntrack", "List the flows connection tracking follows for the filter's `ct state` rules: TCP's state as " +
            "Linux names it, seconds left idle, both directions. Tracking runs while a ct rule is in force. Needs an administrator: root or the daemon's admin-group.\n\n" +
            "Examples:\n  norman conntrack -L\n  norman conntrack -L -p tcp\n  norman conntrack -L -f ipv6")
        {
            socket, list, protocol, family, json,
        };
        command.SetAction(result => ControlCall.Run("norman conntrack", result, socket, new ControlRequest { Op = ControlProtocol.Ops.Conntrack }, response =>
        {
            var table = response.Conntrack ?? new ConntrackInfo();
            string? only = result.GetValue(protocol);
            string? onlyFamily = result.GetValue(family);
            table.Flows = table.Flows.Where(f => (only is null || f.Protocol == only)
                && (onlyFamily is null || (onlyFamily == "ipv6") == f.Source.Contains(':'))).ToList();
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(table, ControlJson.Default.ConntrackInfo));
                return;
            }
            foreach (var flow in table.Flows)
            {
                Console.WriteLine(Line(flow));
            }
            if (!table.Active)
            {
                Console.Error.WriteLine("norman conntrack: tracking is off: no ct rule is in force (e.g. norman filter add ingress ct state established,related accept).");
            }
            Console.Error.WriteLine($"norman conntrack: {table.Flows.Count} flow entries have been shown (table: {table.Count} of {table.Max}" +
                (table.TableFull > 0 ? $", {table.TableFull} flows not tracked: table full)." : ")."));
        }));
        return command;
    }

    /// <summary>A flow as conntrack prints one: protocol, number, seconds left, state, the original direction and the reply's.</summary>
    public static string Line(TrackedFlowInfo flow)
    {
        var line = new StringBuilder();
        int number = flow.Protocol switch { "tcp" => 6, "icmp" => 1, "icmpv6" => 58, _ => 17 };
        line.Append(CultureInfo.InvariantCulture, $"{flow.Protocol,-8} {number} {flow.SecondsLeft} ");
        if (flow.State.Length > 0)
        {
            line.Append(flow.State).Append(' ');
        }
        // An ICMP query's flow is its id (carried where ports are): echo request out, echo reply back, as conntrack prints it.
        bool icmp = flow.Protocol is "icmp" or "icmpv6";
        int AnswerTo(int request) => flow.Protocol == "icmpv6" ? request + 1 : request == 8 ? 0 : request + 1;
        // Listed from the side that asked: its "port" is the id, the other side's the request's type.
        int id = flow.SourcePort, type = flow.DestinationPort;
        line.Append(icmp ? $"src={flow.Source} dst={flow.Destination} type={type} code=0 id={id} "
            : string.Create(CultureInfo.InvariantCulture, $"src={flow.Source} dst={flow.Destination} sport={flow.SourcePort} dport={flow.DestinationPort} "));
        if (!flow.Replied)
        {
            line.Append("[UNREPLIED] ");
        }
        line.Append(icmp ? $"src={flow.Destination} dst={flow.Source} type={AnswerTo(type)} code=0 id={id}"
            : string.Create(CultureInfo.InvariantCulture, $"src={flow.Destination} dst={flow.Source} sport={flow.DestinationPort} dport={flow.SourcePort}"));
        if (flow.Replied)
        {
            line.Append(" [ASSURED]");
        }
        return line.ToString();
    }
}
