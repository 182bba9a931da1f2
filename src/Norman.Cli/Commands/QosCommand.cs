using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Norman.Core.Protocol;
using Spectre.Console;
using static Norman.Cli.Commands.TableConsole;

namespace Norman.Cli.Commands;

/// <summary>
/// `norman qos`: classes between applications, in words a tc user reads at sight (band, weight, rate, ceil, burst)
/// without tc's pitfalls: no qdisc/class/filter trees to build by handle, rates always in bits per second, a default
/// class for whatever no match chooses, and matches in filter words that name applications.
/// show, add, change, delete, match add, match delete.
/// </summary>
public static class QosCommand
{
    private const string SettingsHelp = "SETTINGS: [band 0-7 (0 is served first; default 1)] [weight 1-1000 (share inside a band; default 1)] " +
        "[rate R (guaranteed)] [ceil R (never more)] [burst BYTES] [dscp N|ef|afXY|csN (mark what it sends)] " +
        "[police R (drop what it receives above R)] [match MATCH]. Rates in bits per second: 100M, 1G, 800k.";

    private const string MatchHelp = "MATCH: filter words that choose sockets, as they send: [app NAME] [uid N] [gid N] [pid N] [cgroup PATH] " +
        "[udp|tcp sport P[-Q] (the application's port)] [dport P] [ip saddr CIDR] [ip daddr CIDR] [dscp D (as its packets carry it)].";

    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket.", Recursive = true };
        var command = new Command("qos", "Show and change QoS classes: which application's traffic goes first, and how much each may send.\n\n" +
            "Examples:\n  norman qos add database band 0 match app kvdb        # the database before everything else\n" +
            "  norman qos add bob weight 1 ceil 300M match app bobapp\n  norman qos change bob ceil 500M\n" +
            "  norman qos match add database uid 999\n  norman qos show\n\n" + SettingsHelp + "\n" + MatchHelp)
        {
            socket,
        };
        command.Subcommands.Add(Show(socket));
        command.Subcommands.Add(Change("add", ControlProtocol.Ops.QosAdd, "Add a class (and, after 'match', its first match).\n\nExample:\n  norman qos add database band 0 match app kvdb", socket));
        command.Subcommands.Add(Change("change", ControlProtocol.Ops.QosChange, "Change a class's settings; those not named stay.\n\nExample:\n  norman qos change database rate 200M", socket));
        command.Subcommands.Add(Delete(socket));
        command.Subcommands.Add(Matches(socket));
        return command;
    }

    private static Command Show(Option<string?> socket)
    {
        var json = new Option<bool>("--json") { Description = "Print the classes and their counters as JSON." };
        var show = new Command("show", "List every class with its settings, matches, last-second rate, packets, bytes, drops and backlog.\n\n" +
            "Example:\n  norman qos show") { json };
        show.Aliases.Add("list");
        show.SetAction(result => Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.QosShow }, response =>
        {
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(response.Qos!, ControlJson.Default.QosInfo));
            }
            else
            {
                Print(response.Qos!);
            }
        }));
        return show;
    }

    private static Command Change(string name, string op, string description, Option<string?> socket)
    {
        var className = new Argument<string>("CLASS") { Description = "The class's name (default: the class of what no match chooses)." };
        var settings = new Argument<string[]>("SETTINGS") { Description = SettingsHelp, Arity = ArgumentArity.OneOrMore };
        var change = new Command(name, description + "\n\n" + SettingsHelp + "\n" + MatchHelp) { className, settings };
        change.SetAction(result => Call(result, socket, new ControlRequest
        {
            Op = op,
            Class = result.GetValue(className),
            Rule = result.GetValue(settings)!.ToList(),
        }, response => Print(response.Qos!)));
        return change;
    }

    private static Command Delete(Option<string?> socket)
    {
        var className = new Argument<string>("CLASS") { Description = "The class to delete; its matches go with it." };
        var delete = new Command("delete", "Delete a class and its matches; its sockets go back to the default class.\n\nExample:\n  norman qos delete database") { className };
        delete.SetAction(result => Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.QosDelete, Class = result.GetValue(className) }, _ => { }));
        return delete;
    }

    private static Command Matches(Option<string?> socket)
    {
        var className = new Argument<string>("CLASS") { Description = "The class the matching sockets go to." };
        var words = new Argument<string[]>("MATCH") { Description = MatchHelp, Arity = ArgumentArity.OneOrMore };
        var add = new Command("add", "Add a match: sockets it fits go to the class (first match wins, in the order added).\n\n" +
            "Example:\n  norman qos match add database app kvdb udp sport 6379") { className, words };
        add.SetAction(result => Call(result, socket, new ControlRequest
        {
            Op = ControlProtocol.Ops.QosMatchAdd,
            Class = result.GetValue(className),
            Rule = result.GetValue(words)!.ToList(),
        }, response => Print(response.Qos!)));
        var handle = new Argument<long>("HANDLE") { Description = "The match's handle, as `norman qos show` prints it (#N)." };
        var delete = new Command("delete", "Delete a match by its handle (`norman qos show` lists them).\n\nExample:\n  norman qos match delete 2") { handle };
        delete.SetAction(result => Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.QosMatchDelete, Handle = result.GetValue(handle) }, _ => { }));
        return new Command("match", "Add or delete the matches that put sockets into classes.\n\nExample:\n  norman qos match add database uid 1001") { add, delete };
    }

    /// <summary>One row a class, tc -s class show's figures as columns; matches with their handles in the last.</summary>
    private static void Print(QosInfo qos)
    {
        var console = TableConsole.Create();
        console.WriteLine($"line rate {Rate(qos.LineRateBits, "none")}");
        var table = new Table().Border(TableBorder.Simple);
        foreach (var column in new[] { "class", "band", "weight", "rate", "ceil", "dscp", "police", "sent/s", "packets", "bytes", "drops", "backlog", "matches" })
        {
            table.AddColumn(new TableColumn(column) { Alignment = column is "class" or "matches" ? Justify.Left : Justify.Right });
        }
        foreach (var c in qos.Classes)
        {
            table.AddRow(
                Markup.Escape(c.Name),
                Number(c.Band),
                Number(c.Weight),
                Rate(c.RateBits, "-"),
                Rate(c.CeilBits, "line"),
                c.Dscp < 0 ? "-" : Number(c.Dscp),
                Rate(c.PoliceBits, "-"),
                Rate((long)c.SentBitsPerSecond, "0"),
                Number(c.Packets),
                Number(c.Bytes),
                Number(c.Drops),
                Number(c.Backlog),
                c.Matches.Count == 0 ? (c.Name == "default" ? "(everything else)" : "-")
                    : Markup.Escape(string.Join("; ", c.Matches.Select(m => $"#{m.Handle} {m.Match}"))));
        }
        console.Write(table);
    }


    /// <summary>Bits per second as tc prints them: 1Gbit, 250Mbit, 800Kbit, 12bit.</summary>
    private static string Rate(long bits, string none) => bits <= 0 ? none
        : bits >= 1_000_000_000 ? string.Create(CultureInfo.InvariantCulture, $"{bits / 1e9:0.###}Gbit")
        : bits >= 1_000_000 ? string.Create(CultureInfo.InvariantCulture, $"{bits / 1e6:0.###}Mbit")
        : bits >= 1_000 ? string.Create(CultureInfo.InvariantCulture, $"{bits / 1e3:0.###}Kbit")
        : string.Create(CultureInfo.InvariantCulture, $"{bits}bit");

    private static int Call(ParseResult result, Option<string?> socket, ControlRequest request, Action<ControlResponse> show) =>
        ControlCall.Run("norman qos", result, socket, request, show);
}
