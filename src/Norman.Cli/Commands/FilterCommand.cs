using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Norman.Core.Protocol;

namespace Norman.Cli.Commands;

/// <summary>
/// `norman filter`: the firewall on Norman's path, in words an nft user reads at sight.
/// list, add, insert, delete, flush, policy, save, restore.
/// </summary>
public static class FilterCommand
{
    private const string RuleHelp = "RULE, in nft's words: [ip saddr|daddr [!=] NET|{ NET, … }|@SET] [ip protocol|meta l4proto P|{…}] [ip length N[-M]] " +
        "[ip dscp D] [udp|tcp|icmp|icmpv6] [sport|dport [!=] P[-Q]|{ P, … }|@SET] [icmp type T|{…}] [tcp flags F,F | == F | F / MASK] " +
        "[app NAME] [exe PATH] [uid N] [gid N] [pid N] [cgroup PATH] [ct state S,S|{ S, … }] " +
        "[limit rate [over] N/second|minute|hour|day [burst M packets]] [pcap \"EXPR\"] [counter] " +
        "accept|drop|reject [with tcp reset|with icmp type T]|count|log [prefix \"TEXT\"]";

    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket.", Recursive = true };
        var command = new Command("filter", "Show and change the filter policy: two chains, ingress and egress, first match wins.\n\n" +
            "Examples:\n  norman filter add egress app bobapp drop\n  norman filter add ingress udp dport 80 reject\n" +
            "  norman filter insert ingress ip saddr 198.18.0.0/24 accept\n  norman filter policy ingress drop\n  norman filter list\n\n" + RuleHelp)
        {
            socket,
        };
        command.Subcommands.Add(List(socket));
        command.Subcommands.Add(Change("add", "Append a rule to a chain.\n\nExamples:\n  norman filter add ingress udp dport 80 drop\n  norman filter add egress app bobapp drop", socket, insert: false));
        command.Subcommands.Add(Change("insert", "Insert a rule at the top of a chain.\n\nExample:\n  norman filter insert ingress ip saddr 198.18.0.0/24 accept", socket, insert: true));
        command.Subcommands.Add(Delete(socket));
        command.Subcommands.Add(Flush(socket));
        command.Subcommands.Add(Policy(socket));
        command.Subcommands.Add(Save(socket));
        command.Subcommands.Add(Sets(socket));
        command.Subcommands.Add(Elements(socket));
        command.Subcommands.Add(Restore(socket));
        return command;
    }

    private static Command List(Option<string?> socket)
    {
        var json = new Option<bool>("--json") { Description = "Print the policy as JSON." };
        var list = new Command("list", "List both chains with each rule's handle and packet and byte counters.\n\nExamples:\n  norman filter list\n  norman filter list --json") { json };
        list.SetAction(result => Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.FilterList }, response =>
        {
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(response.Filter!, ControlJson.Default.FilterInfo));
            }
            else
            {
                Console.Write(Format(response.Filter!));
            }
        }));
        return list;
    }

    private static Command Change(string name, string description, Option<string?> socket, bool insert)
    {
        var chain = new Argument<string>("CHAIN") { Description = "ingress or egress." };
        var rule = new Argument<string[]>("RULE") { Description = RuleHelp, Arity = ArgumentArity.OneOrMore };
        var change = new Command(name, description) { chain, rule };
        change.SetAction(result => Call(result, socket, new ControlRequest
        {
            Op = ControlProtocol.Ops.FilterAdd,
            Chain = result.GetValue(chain),
            Rule = result.GetValue(rule)!.ToList(),
            Insert = insert,
        }, response => Console.Write(Format(response.Filter!))));
        return change;
    }

    private static Command Delete(Option<string?> socket)
    {
        var handle = new Argument<long>("HANDLE") { Description = "The rule's handle, as `norman filter list` shows it." };
        var delete = new Command("delete", "Delete a rule by its handle (`norman filter list` shows them).\n\nExample:\n  norman filter delete 3") { handle };
        delete.SetAction(result => Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.FilterDelete, Handle = result.GetValue(handle) }, _ => { }));
        return delete;
    }

    private static Command Flush(Option<string?> socket)
    {
        var chain = new Argument<string?>("CHAIN") { Description = "ingress or egress; both if left out.", Arity = ArgumentArity.ZeroOrOne };
        var flush = new Command("flush", "Delete every rule of a chain (or of both); policies stay.\n\nExamples:\n  norman filter flush ingress\n  norman filter flush") { chain };
        flush.SetAction(result => Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.FilterFlush, Chain = result.GetValue(chain) }, _ => { }));
        return flush;
    }

    private static Command Policy(Option<string?> socket)
    {
        var chain = new Argument<string>("CHAIN") { Description = "ingress or egress." };
        var action = new Argument<string>("POLICY") { Description = "accept or drop: what happens to a packet no rule decided." };
        var policy = new Command("policy", "Set a chain's default policy.\n\nExample:\n  norman filter policy ingress drop") { chain, action };
        policy.SetAction(result => Call(result, socket, new ControlRequest
        {
            Op = ControlProtocol.Ops.FilterPolicy,
            Chain = result.GetValue(chain),
            Policy = result.GetValue(action),
        }, _ => { }));
        return policy;
    }

    private static Command Sets(Option<string?> socket)
    {
        var name = new Argument<string>("NAME") { Description = "The set's name; rules refer to it as @NAME." };
        var type = new Argument<string>("TYPE") { Description = "ipv4_addr or ipv6_addr (addresses and networks) or inet_service (ports)." };
        var elements = new Argument<string[]>("ELEMENTS") { Description = "Addresses or ports to put in it.", Arity = ArgumentArity.ZeroOrMore };
        var add = new Command("add", "Create a named set (or add to it).\n\nExample:\n  norman filter set add blocked ipv4_addr 203.0.113.7 203.0.113.9\n" +
            "  norman filter add ingress ip saddr @blocked drop") { name, type, elements };
        add.SetAction(result => Call(result, socket, new ControlRequest
        {
            Op = ControlProtocol.Ops.FilterSetAdd,
            SetName = result.GetValue(name),
            SetType = result.GetValue(type),
            Elements = (result.GetValue(elements) ?? []).ToList(),
        }, _ => { }));
        var deleteName = new Argument<string>("NAME") { Description = "The set to delete (no rule may use it)." };
        var delete = new Command("delete", "Delete a named set.\n\nExample:\n  norman filter set delete blocked") { deleteName };
        delete.SetAction(result => Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.FilterSetDelete, SetName = result.GetValue(deleteName) }, _ => { }));
        return new Command("set", "Named sets of addresses or ports, matched with one lookup (like nft sets or ipset).\n\nExample:\n  norman filter set add blocked ipv4_addr 203.0.113.7") { add, delete };
    }

    private static Command Elements(Option<string?> socket)
    {
        Command Change(string verb, string op, string description)
        {
            var name = new Argument<string>("NAME") { Description = "The set." };
            var elements = new Argument<string[]>("ELEMENTS") { Description = "Addresses or ports.", Arity = ArgumentArity.OneOrMore };
            var change = new Command(verb, description) { name, elements };
            change.SetAction(result => Call(result, socket, new ControlRequest
            {
                Op = op,
                SetName = result.GetValue(name),
                Elements = result.GetValue(elements)!.ToList(),
            }, _ => { }));
            return change;
        }
        return new Command("element", "Add or delete elements of a named set, in one swap.\n\nExample:\n  norman filter element add blocked 203.0.113.10")
        {
            Change("add", ControlProtocol.Ops.FilterElementAdd, "Add elements to a set.\n\nExample:\n  norman filter element add blocked 203.0.113.10"),
            Change("delete", ControlProtocol.Ops.FilterElementDelete, "Delete elements from a set.\n\nExample:\n  norman filter element delete blocked 203.0.113.10"),
        };
    }

    private static Command Save(Option<string?> socket)
    {
        var save = new Command("save", "Print the policy in the file format that restore reads (and normand keeps in its policy file).\n\nExample:\n  norman filter save > policy.rules");
        save.SetAction(result => Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.FilterSave }, response =>
        {
            foreach (var line in response.Filter!.Lines!)
            {
                Console.WriteLine(line);
            }
        }));
        return save;
    }

    private static Command Restore(Option<string?> socket)
    {
        var file = new Argument<string>("FILE") { Description = "A policy file, as save prints it; - for standard input." };
        var dryRun = new Option<bool>("--dry-run", "-c")
        {
            Description = "Parse and compile the file exactly as a restore would, report its errors with their line, show what would change, and change nothing (as nft -c -f).",
        };
        var allowEmpty = new Option<bool>("--allow-empty") { Description = "Accept a file with nothing in it (and change nothing); refused otherwise." };
        var restore = new Command("restore", "Apply a policy file in one swap, as nft -f does: its lines are added to the policy in force, and a " +
            "'flush ruleset' line (save writes one first) empties it before the lines after it. A file that does not name a chain's policy " +
            "leaves it as it is.\n\nExamples:\n  norman filter save > policy.rules\n  norman filter restore policy.rules\n  norman filter restore --dry-run policy.rules")
        {
            file, dryRun, allowEmpty,
        };
        restore.Aliases.Add("apply");
        restore.SetAction(result =>
        {
            string path = result.GetValue(file)!;
            string text;
            try
            {
                text = path == "-" ? Console.In.ReadToEnd() : File.ReadAllText(path);
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"norman filter: cannot read {path}: {error.Message}");
                return 1;
            }
            var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
            bool check = result.GetValue(dryRun);
            var request = new ControlRequest { Op = ControlProtocol.Ops.FilterRestore, Lines = lines, DryRun = check, AllowEmpty = result.GetValue(allowEmpty) };
            if (!check)
            {
                return Call(result, socket, request, response => Console.Write(Format(response.Filter!)));
            }
            List<string> current = [];
            int saved = Call(result, socket, new ControlRequest { Op = ControlProtocol.Ops.FilterSave }, response => current = Meaningful(response.Filter!.Lines!));
            return saved != 0 ? saved : Call(result, socket, request, response =>
            {
                var wanted = Meaningful(response.Filter!.Lines!);
                foreach (var gone in current.Except(wanted))
                {
                    Console.WriteLine($"- {gone}");
                }
                foreach (var added in wanted.Except(current))
                {
                    Console.WriteLine($"+ {added}");
                }
                Console.Error.WriteLine($"norman filter: {path} is valid; nothing was changed (--dry-run).");
            });
        });
        return restore;
    }

    private static List<string> Meaningful(IEnumerable<string> lines) =>
        lines.Select(l => l.Split('#', 2)[0].Trim()).Where(l => l.Length > 0 && l != "flush ruleset").ToList();

    /// <summary>nft-like: each chain with its policy, each rule with its handle and counters.</summary>
    public static string Format(FilterInfo filter)
    {
        var text = new StringBuilder();
        foreach (var (chain, policy) in new[] { ("ingress", filter.IngressPolicy), ("egress", filter.EgressPolicy) })
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"chain {chain} {{ policy {policy}");
            foreach (var rule in filter.Rules.Where(r => r.Chain == chain))
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"    {rule.Rule,-50} # handle {rule.Handle}, packets {rule.Packets} bytes {rule.Bytes}");
            }
            text.AppendLine("}");
        }
        foreach (var set in filter.Sets)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"set {set.Name} {{ type {set.Type}; {set.Elements} elements }}");
        }
        return text.ToString();
    }

    private static int Call(ParseResult result, Option<string?> socket, ControlRequest request, Action<ControlResponse> show) =>
        ControlCall.Run("norman filter", result, socket, request, show);
}
