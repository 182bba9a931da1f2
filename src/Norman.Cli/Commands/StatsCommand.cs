using System.CommandLine;
using System.Text.Json;
using Norman.Core.Protocol;
using Spectre.Console;
using static Norman.Cli.Commands.TableConsole;

namespace Norman.Cli.Commands;

/// <summary>`norman stats`: every counter the daemon keeps, as `nstat`/`ip -s link` show the kernel's, or as JSON.</summary>
public static class StatsCommand
{
    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket (default: $NORMAN_SOCKET, else /run/norman/norman.sock)." };
        var json = new Option<bool>("--json") { Description = "Print every counter as JSON (the same figures as the Prometheus endpoint)." };
        var zeros = new Option<bool>("--zeros", "-z") { Description = "Also show counters that are zero (nstat's -z)." };
        var command = new Command("stats", "Show every counter: the port's, drops by reason, each socket's, each filter rule's, each QoS class's.\n\n" +
            "Examples:\n  norman stats\n  norman stats --json | jq '.counters.drop_rx_pipe_full'\n  norman up --metrics 127.0.0.1:9469   # the same for Prometheus")
        {
            socket, json, zeros,
        };
        command.SetAction(result => ControlCall.Run("norman stats", result, socket, new ControlRequest { Op = ControlProtocol.Ops.Stats }, response =>
        {
            var stats = response.Stats ?? new StatsInfo();
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(stats, ControlJson.Default.StatsInfo));
                return;
            }
            Print(stats, result.GetValue(zeros));
        }));
        return command;
    }

    private static void Print(StatsInfo stats, bool zeros)
    {
        var console = TableConsole.Create();
        if (stats.Port.Length > 0)
        {
            Console.WriteLine($"port: {stats.Port}");
        }
        var counters = Table("counter", "value");
        foreach (var (name, value) in stats.Counters.Where(c => zeros || c.Value != 0).OrderBy(c => c.Key.StartsWith("drop_", StringComparison.Ordinal)).ThenBy(c => c.Key, StringComparer.Ordinal))
        {
            counters.AddRow(name, Number(value));
        }
        console.Write(counters);

        var sockets = Table("socket", "process", "rx packets", "rx bytes", "tx packets", "tx bytes", "recv-q", "drops");
        foreach (var s in stats.Sockets)
        {
            sockets.AddRow($"{s.Protocol} {s.LocalAddress}:{s.LocalPort}", Markup.Escape(s.Pid == 0 ? "-" : $"{s.ProcessName} ({s.Pid})"),
                Number(s.RxPackets), Number(s.RxBytes), Number(s.TxPackets), Number(s.TxBytes), Number(s.RecvQ),
                Markup.Escape(string.Join(", ", s.Drops.Where(d => zeros || d.Value != 0).Select(d => $"{d.Key} {d.Value}"))));
        }
        console.Write(sockets);

        if (stats.Rules.Count > 0)
        {
            var rules = Table("rule", "packets", "bytes");
            foreach (var r in stats.Rules)
            {
                rules.AddRow(Markup.Escape($"#{r.Handle} {r.Chain} {r.Rule}"), Number(r.Packets), Number(r.Bytes));
            }
            console.Write(rules);
        }
        var classes = Table("qos class", "packets", "bytes", "policed", "backlog");
        foreach (var c in stats.Classes)
        {
            classes.AddRow(Markup.Escape(c.Name), Number(c.Packets), Number(c.Bytes), Number(c.Drops), Number(c.Backlog));
        }
        console.Write(classes);
    }

    private static Table Table(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Simple);
        for (int i = 0; i < columns.Length; i++)
        {
            table.AddColumn(new TableColumn(columns[i]) { Alignment = i == 0 || columns[i] is "process" or "drops" ? Justify.Left : Justify.Right });
        }
        return table;
    }

}
