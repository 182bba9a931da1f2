using System.Globalization;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// Reads a rule in Norman's filter syntax, close to nft's so that an nftables user reads it at sight:
/// <code>
///   [ip saddr CIDR] [ip daddr CIDR] [udp|tcp|icmp] [sport P[-Q]] [dport P[-Q]]
///   [app NAME] [uid N] [gid N] [pid N] [ct state S[,S…]] [pcap "EXPRESSION"]  accept|drop|reject|count
/// </code>
/// e.g. <c>udp dport 80 drop</c>, <c>app bobapp drop</c>, <c>ip saddr 198.18.0.0/24 udp dport 5000-6000 accept</c>,
/// <c>pcap "udp and len &gt; 1000" count</c>. A mistake names the word it stumbled on and what was expected there.
/// </summary>
public static class FilterRuleParser
{
    public static FilterRule Parse(Chain chain, IReadOnlyList<string> words)
    {
        var rule = new FilterRule { Chain = chain };
        FilterAction? action = null;
        for (int i = 0; i < words.Count; i++)
        {
            string word = words[i];
            if (action is not null)
            {
                throw Error(word, "nothing may follow the action");
            }
            switch (word)
            {
                case "ip":
                    string field = Next(words, ref i, "saddr or daddr");
                    var (network, prefix) = Cidr(Next(words, ref i, "an address or network, like 198.18.0.0/24"));
                    rule = field switch
                    {
                        "saddr" => rule with { SourceNetwork = network, SourcePrefix = prefix },
                        "daddr" => rule with { DestinationNetwork = network, DestinationPrefix = prefix },
                        _ => throw Error(field, "saddr or daddr after 'ip'"),
                    };
                    break;
                case "udp" or "tcp" or "icmp":
                    rule = rule with { Protocol = word switch { "udp" => IpProtocols.Udp, "tcp" => IpProtocols.Tcp, _ => IpProtocols.Icmp } };
                    break;
                case "sport":
                    var (sourceLow, sourceHigh) = PortRange(Next(words, ref i, "a port or range, like 53 or 1000-2000"));
                    rule = rule with { SourcePortLow = sourceLow, SourcePortHigh = sourceHigh };
                    break;
                case "dport":
                    var (destinationLow, destinationHigh) = PortRange(Next(words, ref i, "a port or range, like 53 or 1000-2000"));
                    rule = rule with { DestinationPortLow = destinationLow, DestinationPortHigh = destinationHigh };
                    break;
                case "app":
                    rule = rule with { App = Next(words, ref i, "a process name, as `norman ss -p` shows it") };
                    break;
                case "uid":
                    rule = rule with { Uid = Number(Next(words, ref i, "a numeric uid")) };
                    break;
                case "gid":
                    rule = rule with { Gid = Number(Next(words, ref i, "a numeric gid")) };
                    break;
                case "pid":
                    rule = rule with { Pid = Number(Next(words, ref i, "a pid")) };
                    break;
                case "ct":
                    if (Next(words, ref i, "'state' after 'ct'") != "state")
                    {
                        throw Error(words[i], "'state' after 'ct'");
                    }
                    var states = ConnectionState.None;
                    foreach (var name in Next(words, ref i, "states like established,related").Split(',', StringSplitOptions.RemoveEmptyEntries))
                    {
                        states |= name switch
                        {
                            "new" => ConnectionState.New,
                            "established" => ConnectionState.Established,
                            "related" => ConnectionState.Related,
                            "invalid" => ConnectionState.Invalid,
                            _ => throw Error(name, "a connection state: new, established, related or invalid"),
                        };
                    }
                    rule = rule with { CtStates = states };
                    break;
                case "pcap":
                    rule = rule with { Pcap = Next(words, ref i, "a libpcap expression in quotes, like \"udp port 53\"").Trim('"') };
                    break;
                case "accept" or "drop" or "reject" or "count":
                    action = Enum.Parse<FilterAction>(word, ignoreCase: true);
                    break;
                default:
                    throw Error(word, "a match (ip saddr/daddr, udp, tcp, icmp, sport, dport, app, uid, gid, pid, ct state, pcap) or an action (accept, drop, reject, count)");
            }
        }
        if ((rule.SourcePortLow != 0 || rule.SourcePortHigh != ushort.MaxValue || rule.DestinationPortLow != 0 || rule.DestinationPortHigh != ushort.MaxValue)
            && rule.Protocol is not (IpProtocols.Udp or IpProtocols.Tcp))
        {
            throw new FormatException("Ports need a protocol: write 'udp dport 53' or 'tcp dport 80'.");
        }
        return rule with { Action = action ?? throw new FormatException("The rule has no action: end it with accept, drop, reject or count.") };
    }

    /// <summary>Splits a rule line into words, keeping a quoted pcap expression whole.</summary>
    public static List<string> Words(string line)
    {
        var words = new List<string>();
        int i = 0;
        while (i < line.Length)
        {
            if (char.IsWhiteSpace(line[i]))
            {
                i++;
                continue;
            }
            if (line[i] == '"')
            {
                int end = line.IndexOf('"', i + 1);
                if (end < 0)
                {
                    throw new FormatException($"Unclosed quote in '{line}'.");
                }
                words.Add(line[(i + 1)..end]);
                i = end + 1;
                continue;
            }
            int stop = i;
            while (stop < line.Length && !char.IsWhiteSpace(line[stop]))
            {
                stop++;
            }
            words.Add(line[i..stop]);
            i = stop;
        }
        return words;
    }

    private static string Next(IReadOnlyList<string> words, ref int i, string expected) =>
        ++i < words.Count ? words[i] : throw new FormatException($"The rule ends where {expected} was expected.");

    private static (NetAddress, int) Cidr(string text)
    {
        var parts = text.Split('/');
        if (!System.Net.IPAddress.TryParse(parts[0], out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            throw Error(text, "an IPv4 address or network, like 198.18.0.0/24");
        }
        int prefix = 32;
        if (parts.Length > 2 || (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix is < 0 or > 32)))
        {
            throw Error(text, "a prefix length from 0 to 32");
        }
        uint mask = prefix == 0 ? 0 : uint.MaxValue << (32 - prefix);
        return (NetAddress.FromV4(NetAddress.From(address).V4 & mask), prefix);
    }

    private static (ushort, ushort) PortRange(string text)
    {
        var parts = text.Split('-');
        if (parts.Length > 2 || !ushort.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ushort low))
        {
            throw Error(text, "a port or range, like 53 or 1000-2000");
        }
        ushort high = low;
        if (parts.Length == 2 && (!ushort.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out high) || high < low))
        {
            throw Error(text, "a range low-high with low ≤ high");
        }
        return (low, high);
    }

    private static int Number(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) ? value : throw Error(text, "a number");

    private static FormatException Error(string word, string expected) => new($"Unexpected '{word}': expected {expected}.");
}
