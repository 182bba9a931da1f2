using System.Globalization;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// Reads a rule in Norman's filter syntax, close to nft's so that an nftables user reads it at sight:
/// <code>
///   [ip|ip6 saddr CIDR|@SET] [ip|ip6 daddr CIDR|@SET] [udp|tcp|icmp|icmpv6] [sport P[-Q]|@SET] [dport P[-Q]|@SET]
///   [icmp type T] [tcp flags F[,F…] [/ MASK]] [length N[-M]] [dscp D] [app NAME] [exe PATH] [uid N] [gid N] [pid N] [cgroup PATH]
///   [ct state S[,S…]] [limit rate [over] N/second [burst M]] [pcap "EXPRESSION"]
///   accept|drop|reject|count|log [prefix "TEXT"]
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
            if (action is not null && !(action == FilterAction.Log && word == "prefix"))
            {
                throw Error(word, "nothing may follow the action (but a log prefix)");
            }
            switch (word)
            {
                case "ip" or "ip6":
                    bool v6 = word == "ip6";
                    string field = Next(words, ref i, "saddr or daddr");
                    string target = Next(words, ref i, "an address or network, like 198.18.0.0/24, or a set, like @blocked");
                    if (target.StartsWith('@'))
                    {
                        rule = field switch
                        {
                            "saddr" => rule with { SourceSet = target[1..] },
                            "daddr" => rule with { DestinationSet = target[1..] },
                            _ => throw Error(field, "saddr or daddr after 'ip'"),
                        };
                        break;
                    }
                    var (network, prefix) = v6 ? Cidr6(target) : Cidr(target);
                    rule = field switch
                    {
                        "saddr" => rule with { SourceNetwork = network, SourcePrefix = prefix },
                        "daddr" => rule with { DestinationNetwork = network, DestinationPrefix = prefix },
                        _ => throw Error(field, "saddr or daddr after 'ip'"),
                    };
                    break;
                case "udp" or "tcp" or "icmp" or "icmpv6" or "icmp6":
                    rule = rule with
                    {
                        Protocol = word switch { "udp" => IpProtocols.Udp, "tcp" => IpProtocols.Tcp, "icmp" => IpProtocols.Icmp, _ => IpProtocols.IcmpV6 },
                    };
                    break;
                case "sport" when i + 1 < words.Count && words[i + 1].StartsWith('@'):
                    rule = rule with { SourcePortSet = words[++i][1..] };
                    break;
                case "dport" when i + 1 < words.Count && words[i + 1].StartsWith('@'):
                    rule = rule with { DestinationPortSet = words[++i][1..] };
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
                    rule = rule with { App = Next(words, ref i, "a program's file name, like kvdb") };
                    break;
                case "exe":
                    string executable = Next(words, ref i, "an executable's absolute path, like /usr/bin/redis-server");
                    rule = rule with { Executable = executable.StartsWith('/') ? executable : throw Error(executable, "an absolute path, like /usr/bin/redis-server") };
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
                case "type":
                    rule = rule with { IcmpType = IcmpType(Next(words, ref i, "an ICMP type, like echo-request or 8")) };
                    break;
                case "flags":
                    byte flags = TcpFlagsOf(Next(words, ref i, "TCP flags, like syn or syn,ack"));
                    byte mask = 0;
                    if (i + 1 < words.Count && words[i + 1] == "/")
                    {
                        i++;
                        mask = TcpFlagsOf(Next(words, ref i, "the flags to look at, like syn,ack,rst"));
                    }
                    rule = rule with { TcpFlags = flags, TcpFlagsMask = mask };
                    break;
                case "length":
                    var (lengthLow, lengthHigh) = LengthRange(Next(words, ref i, "an IP length or range, like 1000- or 64-128"));
                    rule = rule with { LengthLow = lengthLow, LengthHigh = lengthHigh };
                    break;
                case "cgroup":
                    rule = rule with { Cgroup = Next(words, ref i, "a cgroup path, like /system.slice/kvdb.service") };
                    break;
                case "dscp":
                    rule = rule with { Dscp = Dscp(Next(words, ref i, "a DSCP: 0–63, ef, be, af11…af43 or cs0…cs7")) };
                    break;
                case "limit":
                    rule = Limit(rule, words, ref i);
                    break;
                case "prefix" when action == FilterAction.Log:
                    rule = rule with { LogPrefix = Next(words, ref i, "the log prefix in quotes") };
                    continue;
                case "accept" or "drop" or "reject" or "count" or "log":
                    action = Enum.Parse<FilterAction>(word, ignoreCase: true);
                    continue;
                default:
                    throw Error(word, "a match (ip saddr/daddr, udp, tcp, icmp, sport, dport, app, uid, gid, pid, ct state, pcap) or an action (accept, drop, reject, count)");
            }
        }
        if (rule.IcmpType >= 0 && rule.Protocol != IpProtocols.Icmp)
        {
            throw new FormatException("An ICMP type needs the protocol: write 'icmp type echo-request'.");
        }
        if ((rule.TcpFlags != 0 || rule.TcpFlagsMask != 0) && rule.Protocol != IpProtocols.Tcp)
        {
            throw new FormatException("TCP flags need the protocol: write 'tcp flags syn'.");
        }
        if ((rule.SourcePortLow != 0 || rule.SourcePortHigh != ushort.MaxValue || rule.DestinationPortLow != 0 || rule.DestinationPortHigh != ushort.MaxValue
                || rule.SourcePortSet is not null || rule.DestinationPortSet is not null)
            && rule.Protocol is not (IpProtocols.Udp or IpProtocols.Tcp))
        {
            throw new FormatException("Ports need a protocol: write 'udp dport 53' or 'tcp dport 80'.");
        }
        return rule with { Action = action ?? throw new FormatException("The rule has no action: end it with accept, drop, reject or count.") };
    }

    private static readonly (string Name, int Type)[] IcmpTypes =
    [
        ("echo-reply", 0), ("destination-unreachable", 3), ("source-quench", 4), ("redirect", 5), ("echo-request", 8),
        ("router-advertisement", 9), ("router-solicitation", 10), ("time-exceeded", 11), ("parameter-problem", 12),
        ("timestamp-request", 13), ("timestamp-reply", 14),
    ];

    private static readonly (string Name, byte Bit)[] TcpFlagBits =
        [("fin", 0x01), ("syn", 0x02), ("rst", 0x04), ("psh", 0x08), ("ack", 0x10), ("urg", 0x20), ("ecn", 0x40), ("cwr", 0x80)];

    public static string IcmpTypeName(int type) =>
        IcmpTypes.FirstOrDefault(t => t.Type == type).Name ?? type.ToString(CultureInfo.InvariantCulture);

    public static string TcpFlagNames(byte flags) =>
        string.Join(',', TcpFlagBits.Where(f => (flags & f.Bit) != 0).Select(f => f.Name));

    private static int IcmpType(string text) =>
        IcmpTypes.FirstOrDefault(t => t.Name == text) is { Name: not null } known ? known.Type
        : byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out byte number) ? number
        : throw Error(text, $"an ICMP type: {string.Join(", ", IcmpTypes.Select(t => t.Name))}, or a number");

    private static byte TcpFlagsOf(string text)
    {
        byte flags = 0;
        foreach (var name in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var bit = TcpFlagBits.FirstOrDefault(f => f.Name == name);
            flags |= bit.Name is null ? throw Error(name, $"a TCP flag: {string.Join(", ", TcpFlagBits.Select(f => f.Name))}") : bit.Bit;
        }
        return flags;
    }

    private static (int, int) LengthRange(string text)
    {
        var parts = text.Split('-');
        if (parts.Length > 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int low))
        {
            throw Error(text, "an IP length or range, like 100, 1000- or 64-128");
        }
        if (parts.Length == 1)
        {
            return (low, low);
        }
        if (parts[1].Length == 0)
        {
            return (low, int.MaxValue);
        }
        return int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int high) && high >= low
            ? (low, high)
            : throw Error(text, "a range low-high with low ≤ high");
    }

    /// <summary>limit rate [over] N/second | N/minute | N UNIT/second (UNIT: bytes, kbytes, mbytes) [burst M]</summary>
    private static FilterRule Limit(FilterRule rule, IReadOnlyList<string> words, ref int i)
    {
        if (Next(words, ref i, "'rate' after 'limit'") != "rate")
        {
            throw Error(words[i], "'rate' after 'limit'");
        }
        string token = Next(words, ref i, "a rate, like 100/second or 1 mbytes/second");
        bool over = token == "over";
        if (over)
        {
            token = Next(words, ref i, "a rate, like 100/second or 1 mbytes/second");
        }
        string amount = token, per;
        long multiplier = 1;
        bool bytes = false;
        if (token.Contains('/'))
        {
            (amount, per) = (token.Split('/')[0], token.Split('/')[1]);
        }
        else
        {
            var unit = Next(words, ref i, "a unit, like mbytes/second").Split('/');
            if (unit.Length != 2)
            {
                throw Error(words[i], "UNIT/second or UNIT/minute");
            }
            (multiplier, bytes) = unit[0] switch
            {
                "packets" => (1L, false),
                "bytes" => (1L, true),
                "kbytes" => (1024L, true),
                "mbytes" => (1024L * 1024, true),
                _ => throw Error(unit[0], "packets, bytes, kbytes or mbytes"),
            };
            per = unit[1];
        }
        if (!long.TryParse(amount, NumberStyles.None, CultureInfo.InvariantCulture, out long rate) || rate == 0)
        {
            throw Error(amount, "a positive rate");
        }
        rate *= multiplier;
        long perSecond = per switch
        {
            "second" => rate,
            "minute" => Math.Max(1, rate / 60),
            _ => throw Error(per, "second or minute"),
        };
        long burst = bytes ? perSecond : Math.Max(1, perSecond / 10);
        if (i + 1 < words.Count && words[i + 1] == "burst")
        {
            i++;
            burst = Number(Next(words, ref i, "a burst size")) * (bytes ? multiplier : 1);
        }
        return rule with { LimitRate = perSecond, LimitBurst = burst, LimitBytes = bytes, LimitOver = over };
    }

    /// <summary>Splits a rule line into words, keeping a quoted pcap expression whole.</summary>
    /// <summary>A DSCP number (0–63) or its name: ef, af11…af43, cs0…cs7, be.</summary>
    public static int Dscp(string value)
    {
        string name = value.ToLowerInvariant();
        if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int number) && number <= 63)
        {
            return number;
        }
        if (name is "ef")
        {
            return 46;
        }
        if (name is "be")
        {
            return 0;
        }
        if (name.Length == 3 && name.StartsWith("cs", StringComparison.Ordinal) && name[2] is >= '0' and <= '7')
        {
            return (name[2] - '0') << 3;
        }
        if (name.Length == 4 && name.StartsWith("af", StringComparison.Ordinal) && name[2] is >= '1' and <= '4' && name[3] is >= '1' and <= '3')
        {
            return ((name[2] - '0') << 3) | ((name[3] - '0') << 1);
        }
        throw new FormatException($"'dscp {value}': a DSCP is 0–63 or a name: ef, be, af11…af43, cs0…cs7.");
    }

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

    private static (NetAddress, int) Cidr6(string text)
    {
        var parts = text.Split('/');
        if (!System.Net.IPAddress.TryParse(parts[0], out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            throw Error(text, "an IPv6 address or network, like 2001:db8::/32");
        }
        int prefix = 128;
        if (parts.Length > 2 || (parts.Length == 2 && (!int.TryParse(parts[1], out prefix) || prefix is < 0 or > 128)))
        {
            throw Error(text, "a prefix length from 0 to 128");
        }
        var (maskHigh, maskLow) = Mask6(prefix);
        var network = NetAddress.From(address);
        return (new NetAddress(network.High & maskHigh, network.Low & maskLow), prefix);
    }

    /// <summary>The 128-bit mask of an IPv6 prefix, as two halves.</summary>
    public static (ulong High, ulong Low) Mask6(int prefix) =>
        (prefix == 0 ? 0 : prefix >= 64 ? ulong.MaxValue : ulong.MaxValue << (64 - prefix),
         prefix <= 64 ? 0 : prefix == 128 ? ulong.MaxValue : ulong.MaxValue << (128 - prefix));

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
