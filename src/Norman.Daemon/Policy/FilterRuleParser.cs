using System.Globalization;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// Reads a rule in nft's words, with nft's meanings, plus the owner matches only Norman has:
/// <code>
///   [ip|ip6 saddr|daddr [!=] NET|{ NET, … }|@SET] [ip protocol|meta l4proto [!=] P|{…}] [ip length [!=] N[-M]|{…}]
///   [ip dscp [!=] D|{…}] [udp|tcp|icmp|icmpv6] [sport|dport [!=] P[-Q]|{…}|@SET] [icmp type [!=] T|{…}]
///   [tcp flags [!=] F,F | == F | F / MASK | &amp; (MASK) ==|!= F] [app NAME] [exe PATH] [cgroup PATH] [uid N] [gid N] [pid N]
///   [ct state [!=] S,S|{ S, S }] [limit rate [over] N/second|minute|hour|day [burst M packets]]
///   [limit rate [over] N bytes|kbytes|mbytes/second [burst M bytes|kbytes|mbytes]] [pcap "EXPRESSION"] [counter]
///   accept | drop | reject [with tcp reset | with icmp|icmpx type T] | count | log [prefix "TEXT"]
/// </code>
/// Norman's older words still read: <c>length</c> (as <c>ip length</c>), <c>dscp</c> (as <c>ip dscp</c>), <c>type</c>
/// and <c>flags</c> after their protocol. A match given twice, two protocols, a partial address or an unclosed quote is
/// refused, as nft refuses it, never silently rewritten. A mistake names the word it stumbled on and what was expected.
/// </summary>
public static class FilterRuleParser
{
    /// <summary>Reads a rule from its words (a command line's, or <see cref="Words"/> of a file's line).</summary>
    public static FilterRule Parse(Chain chain, IReadOnlyList<string> words) => new Reader(chain, words).Rule();

    /// <summary>A file's line as words (see <see cref="RuleWords"/>).</summary>
    public static List<string> Words(string line) => RuleWords.Split(line);

    private static readonly (string Name, int Type)[] IcmpTypes =
    [
        ("echo-reply", 0), ("destination-unreachable", 3), ("source-quench", 4), ("redirect", 5), ("echo-request", 8),
        ("router-advertisement", 9), ("router-solicitation", 10), ("time-exceeded", 11), ("parameter-problem", 12),
        ("timestamp-request", 13), ("timestamp-reply", 14), ("info-request", 15), ("info-reply", 16),
        ("address-mask-request", 17), ("address-mask-reply", 18),
    ];

    private static readonly (string Name, int Type)[] Icmpv6Types =
    [
        ("destination-unreachable", 1), ("packet-too-big", 2), ("time-exceeded", 3), ("parameter-problem", 4),
        ("echo-request", 128), ("echo-reply", 129), ("mld-listener-query", 130), ("mld-listener-report", 131),
        ("mld-listener-done", 132), ("nd-router-solicit", 133), ("nd-router-advert", 134), ("nd-neighbor-solicit", 135),
        ("nd-neighbor-advert", 136), ("nd-redirect", 137),
    ];

    private static readonly (string Name, long Seconds)[] TimeUnits = [("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400), ("week", 604800)];

    private static readonly (string Name, RejectWith With)[] RejectKinds =
    [
        ("tcp reset", RejectWith.TcpReset), ("icmp type port-unreachable", RejectWith.PortUnreachable),
        ("icmp type host-unreachable", RejectWith.HostUnreachable), ("icmp type net-unreachable", RejectWith.NetUnreachable),
        ("icmp type prot-unreachable", RejectWith.ProtocolUnreachable), ("icmp type admin-prohibited", RejectWith.AdminProhibited),
        ("icmpx type port-unreachable", RejectWith.PortUnreachable), ("icmpx type host-unreachable", RejectWith.HostUnreachable),
        ("icmpx type no-route", RejectWith.NetUnreachable), ("icmpx type admin-prohibited", RejectWith.AdminProhibited),
    ];

    public static string IcmpTypeName(int type, bool v6 = false) =>
        (v6 ? Icmpv6Types : IcmpTypes).FirstOrDefault(t => t.Type == type).Name ?? type.ToString(CultureInfo.InvariantCulture);

    public static string TimeUnitName(long seconds) => TimeUnits.First(u => u.Seconds == seconds).Name;

    public static string RejectName(RejectWith with) => RejectKinds.First(k => k.With == with).Name;

    /// <summary>A DSCP number (0–63) or its name: ef, af11…af43, cs0…cs7, be.</summary>
    public static int Dscp(string value)
    {
        string name = value.ToLowerInvariant();
        if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int number) && number <= 63)
        {
            return number;
        }
        if (name.StartsWith("0x", StringComparison.Ordinal) && int.TryParse(name[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out number) && number <= 63)
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

    /// <summary>A DSCP's name where it has one (ef, cs1, af41…), else its number.</summary>
    public static string DscpName(int dscp) => dscp switch
    {
        0 => "be",
        46 => "ef",
        _ when (dscp & 7) == 0 => $"cs{dscp >> 3}",
        _ when (dscp >> 3) is >= 1 and <= 4 && (dscp & 1) == 0 && ((dscp >> 1) & 3) is >= 1 and <= 3 => $"af{dscp >> 3}{(dscp >> 1) & 3}",
        _ => dscp.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>A network, strictly: four decimal parts for IPv4 (never "10.0.0"), a prefix in range; host bits are cleared, as nft does.</summary>
    public static Network ParseNetwork(string text, bool v6)
    {
        var parts = text.Split('/');
        if (parts.Length > 2 || !NetAddress.TryParse(parts[0], out var address) || address.IsV4 == v6)
        {
            throw Error(text, v6 ? "an IPv6 address or network, like 2001:db8::/32" : "an IPv4 address or network with four parts, like 198.18.0.0/24");
        }
        int bits = v6 ? 128 : 32;
        int prefix = bits;
        if (parts.Length == 2 && (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > bits))
        {
            throw Error(text, $"a prefix length from 0 to {bits}");
        }
        if (!v6)
        {
            uint mask = prefix == 0 ? 0 : uint.MaxValue << (32 - prefix);
            return new Network(NetAddress.FromV4(address.V4 & mask), prefix);
        }
        var (maskHigh, maskLow) = NetAddress.PrefixMask6(prefix);
        return new Network(new NetAddress(address.High & maskHigh, address.Low & maskLow), prefix);
    }

    private static FormatException Error(string word, string expected) => new($"Unexpected '{word}': expected {expected}.");

    /// <summary>One rule's words, read left to right.</summary>
    private sealed class Reader(Chain chain, IReadOnlyList<string> words)
    {
        private readonly HashSet<string> _given = new();
        private FilterRule _rule = new() { Chain = chain };
        private FilterAction? _action;
        private bool _counter;
        private int _i;

        public FilterRule Rule()
        {
            while (_i < words.Count)
            {
                string word = words[_i++];
                if (_action is not null)
                {
                    throw _action == FilterAction.Log && word is "accept" or "drop" or "reject"
                        ? new FormatException($"'log … {word}': Norman's log goes on to the next rule, as a rule of its own. Write 'log prefix \"…\"' " +
                            $"as one rule and '… {word}' as the next.")
                        : Error(word, "nothing after the action (but reject's 'with …' and log's 'prefix …')");
                }
                Match(word);
            }
            Check();
            var action = _action ?? (_counter ? FilterAction.Count
                : throw new FormatException("The rule has no action: end it with accept, drop, reject, count or log."));
            return _rule with { Action = action };
        }

        private void Match(string word)
        {
            switch (word)
            {
                case "ip" or "ip6":
                    IpField(word, Next("saddr, daddr, protocol, length or dscp"));
                    break;
                case "meta":
                    string field = Next("l4proto, length, skuid or skgid");
                    switch (field)
                    {
                        case "l4proto":
                            Protocols("meta l4proto");
                            break;
                        case "length":
                            Once("length");
                            _rule = _rule with { Lengths = Ranges(0, ushort.MaxValue, Number, "a length or range, like 64-128") };
                            break;
                        case "skuid":
                            Once("uid");
                            _rule = _rule with { Uid = Number(Next("a uid")) };
                            break;
                        case "skgid":
                            Once("gid");
                            _rule = _rule with { Gid = Number(Next("a gid")) };
                            break;
                        default:
                            throw Error(field, "l4proto, length, skuid or skgid after 'meta'");
                    }
                    break;
                case "udp" or "tcp" or "icmp" or "icmpv6" or "icmp6":
                    SetProtocol(ProtocolNumber(word));
                    break;
                case "sport" or "dport":
                    Once(word);
                    if (_rule.Protocol is not (IpProtocols.Udp or IpProtocols.Tcp))
                    {
                        throw new FormatException($"Ports need a protocol first: write 'udp {word} …' or 'tcp {word} …'.");
                    }
                    var ports = Ranges(0, ushort.MaxValue, Number, "a port, a range like 1000-2000, a set { 53, 123 } or @SET", sets: true);
                    _rule = word == "sport" ? _rule with { SourcePorts = ports } : _rule with { DestinationPorts = ports };
                    break;
                case "type":
                    Once("type");
                    if (_rule.Protocol is not (IpProtocols.Icmp or IpProtocols.IcmpV6))
                    {
                        throw new FormatException("An ICMP type needs the protocol first: write 'icmp type echo-request'.");
                    }
                    bool v6 = _rule.Protocol == IpProtocols.IcmpV6;
                    _rule = _rule with { IcmpTypes = Ranges(0, 255, text => IcmpType(text, v6), "an ICMP type, like echo-request or 8") };
                    break;
                case "flags":
                    Once("flags");
                    if (_rule.Protocol != IpProtocols.Tcp)
                    {
                        throw new FormatException("TCP flags need the protocol first: write 'tcp flags syn'.");
                    }
                    _rule = _rule with { Flags = TcpFlags() };
                    break;
                case "length":
                    Once("length");
                    _rule = _rule with { Lengths = Ranges(0, ushort.MaxValue, Number, "an IP length or range, like 64-128") };
                    break;
                case "dscp":
                    Once("dscp");
                    _rule = _rule with { Dscps = Ranges(0, 63, Dscp, "a DSCP: 0–63, ef, be, af11…af43 or cs0…cs7") };
                    break;
                case "app":
                    Once("app");
                    _rule = _rule with { App = Next("a program's file name, like kvdb") };
                    break;
                case "exe":
                    Once("exe");
                    string executable = Next("an executable's absolute path, like /usr/bin/redis-server");
                    _rule = _rule with { Executable = executable.StartsWith('/') ? executable : throw Error(executable, "an absolute path, like /usr/bin/redis-server") };
                    break;
                case "cgroup":
                    Once("cgroup");
                    _rule = _rule with { Cgroup = Next("a cgroup path, like /system.slice/kvdb.service") };
                    break;
                case "uid":
                    Once("uid");
                    _rule = _rule with { Uid = Number(Next("a numeric uid")) };
                    break;
                case "gid":
                    Once("gid");
                    _rule = _rule with { Gid = Number(Next("a numeric gid")) };
                    break;
                case "pid":
                    Once("pid");
                    _rule = _rule with { Pid = Number(Next("a pid")) };
                    break;
                case "ct":
                    string what = Next("'state' after 'ct'");
                    if (what != "state")
                    {
                        throw Error(what, "'state' after 'ct'");
                    }
                    Once("ct state");
                    CtState();
                    break;
                case "pcap":
                    Once("pcap");
                    _rule = _rule with { Pcap = Next("a libpcap expression in quotes, like \"udp port 53\"") };
                    break;
                case "limit":
                    Once("limit");
                    Limit();
                    break;
                case "counter":
                    // Every rule counts its packets and bytes: nft's counter is accepted, and its printed values skipped.
                    _counter = true;
                    if (Peek() == "packets")
                    {
                        _i++;
                        Number(Next("the packet count"));
                        if (Next("'bytes'") != "bytes")
                        {
                            throw Error(words[_i - 1], "'bytes N' after 'packets N'");
                        }
                        Number(Next("the byte count"));
                    }
                    break;
                case "accept" or "drop" or "count":
                    _action = Enum.Parse<FilterAction>(word, ignoreCase: true);
                    break;
                case "reject":
                    _action = FilterAction.Reject;
                    if (Peek() == "with")
                    {
                        _i++;
                        RejectWithWords();
                    }
                    break;
                case "log":
                    _action = FilterAction.Log;
                    if (Peek() == "prefix")
                    {
                        _i++;
                        _rule = _rule with { LogPrefix = Next("the log prefix in quotes") };
                    }
                    break;
                default:
                    throw Error(word, "a match (ip saddr/daddr, ip protocol, ip length, ip dscp, udp, tcp, icmp, sport, dport, type, flags, app, exe, " +
                        "uid, gid, pid, cgroup, ct state, limit, pcap, counter) or an action (accept, drop, reject, count, log)");
            }
        }

        private void IpField(string family, string field)
        {
            bool v6 = family == "ip6";
            switch (field)
            {
                case "saddr" or "daddr":
                    Once(field);
                    var match = Addresses(v6);
                    _rule = field == "saddr" ? _rule with { Source = match } : _rule with { Destination = match };
                    break;
                case "protocol" when !v6:
                case "nexthdr" when v6:
                    Protocols($"{family} {field}");
                    break;
                case "length" when !v6:
                    Once("length");
                    _rule = _rule with { Lengths = Ranges(0, ushort.MaxValue, Number, "an IP length or range, like 64-128") };
                    break;
                case "dscp":
                    Once("dscp");
                    _rule = _rule with { Dscps = Ranges(0, 63, Dscp, "a DSCP: 0–63, ef, be, af11…af43 or cs0…cs7") };
                    break;
                default:
                    throw Error(field, v6 ? "saddr, daddr, nexthdr or dscp after 'ip6'" : "saddr, daddr, protocol, length or dscp after 'ip'");
            }
        }

        /// <summary>ip protocol / meta l4proto: one protocol is the rule's protocol (as 'udp'); a set or != is a match of its own.</summary>
        private void Protocols(string words)
        {
            var protocols = Ranges(0, 255, text => ProtocolNumber(text), "a protocol: udp, tcp, icmp, icmpv6 or a number");
            if (!protocols.Negate && protocols.SetName is null && protocols.Ranges.Count == 1 && protocols.Ranges[0].Low == protocols.Ranges[0].High)
            {
                SetProtocol((byte)protocols.Ranges[0].Low);
                return;
            }
            Once(words);
            _rule = _rule with { Protocols = protocols };
        }

        private void SetProtocol(byte protocol)
        {
            if (_rule.Protocol != 0 && _rule.Protocol != protocol)
            {
                throw new FormatException($"A packet cannot be both {Name(_rule.Protocol)} and {Name(protocol)}: write two rules, or a set: " +
                    $"meta l4proto {{ {Name(_rule.Protocol)}, {Name(protocol)} }}.");
            }
            _rule = _rule with { Protocol = protocol };

            static string Name(byte p) => p == IpProtocols.IcmpV6 ? "icmpv6" : IpProtocols.Name(p);
        }

        private static byte ProtocolNumber(string text) => text switch
        {
            "udp" => IpProtocols.Udp,
            "tcp" => IpProtocols.Tcp,
            "icmp" => IpProtocols.Icmp,
            "icmpv6" or "icmp6" or "ipv6-icmp" => IpProtocols.IcmpV6,
            _ => byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out byte number) ? number
                : throw Error(text, "a protocol: udp, tcp, icmp, icmpv6 or a number"),
        };

        private AddressMatch Addresses(bool v6)
        {
            bool negate = Negation();
            string first = Next(v6 ? "an IPv6 address or network" : "an address or network, like 198.18.0.0/24, a set { … } or @SET");
            if (first.StartsWith('@'))
            {
                return new AddressMatch(negate, SetName(first), default, SetIsV6: v6);
            }
            var elements = first.StartsWith('{') ? SetElements(first) : [first];
            return new AddressMatch(negate, null, new ValueList<Network>(elements.Select(e => ParseNetwork(e, v6))));
        }

        /// <summary>A value, a range, a set of them or (with <paramref name="sets"/>) a named set, each read by <paramref name="read"/>.</summary>
        private RangeMatch Ranges(int low, int high, Func<string, int> read, string expected, bool sets = false)
        {
            bool negate = Negation();
            string first = Next(expected);
            if (first.StartsWith('@'))
            {
                return sets ? new RangeMatch(negate, SetName(first), default) : throw Error(first, expected);
            }
            var elements = first.StartsWith('{') ? SetElements(first) : [first];
            var ranges = new List<ValueRange>();
            foreach (var element in elements)
            {
                // A range is two values with a '-' between them; a name may hold a '-' of its own (echo-request).
                int dash = element.IndexOf('-', 1);
                var range = dash > 0 && char.IsAsciiDigit(element[0])
                    ? new ValueRange(read(element[..dash]), element.Length > dash + 1 ? read(element[(dash + 1)..]) : high) // "1000-": to the top
                    : new ValueRange(read(element), read(element));
                if (range.Low < low || range.High > high || range.Low > range.High)
                {
                    throw Error(element, $"{expected}, from {low} to {high}, low ≤ high");
                }
                ranges.Add(range);
            }
            return new RangeMatch(negate, null, new ValueList<ValueRange>(ranges));
        }

        /// <summary>An anonymous set's elements, from its opening word to the word that closes it: "{ 53, 123 }", "{53,123}".</summary>
        private List<string> SetElements(string first)
        {
            var text = new System.Text.StringBuilder(first);
            while (!text.ToString().TrimEnd().EndsWith('}'))
            {
                text.Append(' ').Append(Next("the '}' that closes the set"));
            }
            string inner = text.ToString().Trim();
            inner = inner[1..^1];
            var elements = inner.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
            return elements.Count > 0 ? elements : throw new FormatException($"An empty set '{text}': list its elements, like {{ 53, 123 }}.");
        }

        private static string SetName(string word)
        {
            string name = word[1..];
            return name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-') ? name : throw Error(word, "a set's name after '@', like @blocked");
        }

        private bool Negation()
        {
            if (Peek() == "!=")
            {
                _i++;
                return true;
            }
            if (Peek() == "==")
            {
                _i++;
            }
            return false;
        }

        private void CtState()
        {
            bool negate = Negation();
            string first = Next("states, like established,related or { established, related }");
            var names = first.StartsWith('{') ? SetElements(first) : first.Split(',', StringSplitOptions.RemoveEmptyEntries).ToList();
            var states = ConnectionState.None;
            foreach (var name in names)
            {
                states |= name switch
                {
                    "new" => ConnectionState.New,
                    "established" => ConnectionState.Established,
                    "related" => ConnectionState.Related,
                    "invalid" => ConnectionState.Invalid,
                    "untracked" => ConnectionState.Untracked,
                    _ => throw Error(name, "a connection state: new, established, related, invalid or untracked"),
                };
            }
            _rule = _rule with { CtStates = states, CtNegate = negate };
        }

        /// <summary>tcp flags F,F (any of) | == F (exactly) | != F (not exactly) | F / MASK | &amp; (MASK) == F | &amp; (MASK) != F, as nft compiles each.</summary>
        private TcpFlagsMatch TcpFlags()
        {
            string first = Next("TCP flags, like syn or fin,rst");
            if (first == "&" || first.StartsWith('&'))
            {
                string maskText = first.Length > 1 ? first[1..] : "";
                while (Peek() is { } next && next is not ("==" or "!="))
                {
                    maskText += Next("the flags to look at");
                }
                string op = Next("== or != after the mask");
                byte mask = FlagsOf(maskText);
                byte value = FlagsOf(FlagWords());
                return new TcpFlagsMatch(TcpFlagsTest.Masked, (byte)(value & mask), mask, op == "!=");
            }
            if (first is "==" or "!=")
            {
                // nft compares the whole byte: "!= ack" is "not exactly ack", not "without ack" (that is "& ack == 0").
                return new TcpFlagsMatch(TcpFlagsTest.Masked, FlagsOf(FlagWords()), 0xFF, first == "!=");
            }
            byte flags = FlagsOf(first);
            if (Peek() == "/")
            {
                _i++;
                byte mask = FlagsOf(Next("the flags to look at, like syn,ack,rst"));
                return new TcpFlagsMatch(TcpFlagsTest.Masked, (byte)(flags & mask), mask, false);
            }
            return new TcpFlagsMatch(TcpFlagsTest.Any, 0, flags, false);
        }

        /// <summary>Flags as one word ("fin|rst") or spread over several ("fin", "|", "rst").</summary>
        private string FlagWords()
        {
            string text = Next("TCP flags, like syn or fin|rst");
            while (text.EndsWith('|') || Peek() is { } next && next.StartsWith('|'))
            {
                text += Next("a TCP flag after '|'");
            }
            return text;
        }

        private static byte FlagsOf(string text)
        {
            string trimmed = text.Trim().TrimStart('(').TrimEnd(')');
            if (trimmed.StartsWith("0x", StringComparison.Ordinal))
            {
                return byte.TryParse(trimmed[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte raw) ? raw : throw Error(text, "flags as a hex number, like 0x0");
            }
            if (byte.TryParse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture, out byte number))
            {
                return number;
            }
            byte flags = 0;
            foreach (var name in trimmed.Split(',', '|'))
            {
                var bit = TcpFlagsMatch.Bits.FirstOrDefault(f => f.Name == name.Trim());
                flags |= bit.Name is null ? throw Error(name, $"a TCP flag: {string.Join(", ", TcpFlagsMatch.Bits.Select(f => f.Name))}") : bit.Bit;
            }
            return flags;
        }

        /// <summary>limit rate [over] N/UNIT [burst M [packets]] | N bytes|kbytes|mbytes/UNIT [burst M bytes|kbytes|mbytes].</summary>
        private void Limit()
        {
            string rate = Next("'rate' after 'limit'");
            if (rate != "rate")
            {
                throw Error(rate, "'rate' after 'limit'");
            }
            string token = Next("a rate, like 100/second or 1 mbytes/second");
            bool over = token == "over";
            if (over)
            {
                token = Next("a rate, like 100/second or 1 mbytes/second");
            }
            string amount, unit;
            long multiplier = 1;
            bool bytes = false;
            if (token.Contains('/'))
            {
                (amount, unit) = (token.Split('/')[0], token.Split('/', 2)[1]);
            }
            else
            {
                amount = token;
                var perUnit = Next("a unit, like bytes/second").Split('/');
                if (perUnit.Length != 2)
                {
                    throw Error(words[_i - 1], "UNIT/second, like bytes/second or mbytes/minute");
                }
                (multiplier, bytes) = ByteUnit(perUnit[0]);
                unit = perUnit[1];
            }
            long value = Count(amount);
            if (value == 0)
            {
                throw Error(amount, "a positive rate");
            }
            long seconds = TimeUnits.FirstOrDefault(u => u.Name == unit).Seconds;
            if (seconds == 0)
            {
                throw Error(unit, "second, minute, hour, day or week");
            }
            // nft's defaults: a packet limit holds five packets, a byte limit no more than one unit's rate.
            long burst = bytes ? 0 : 5;
            if (Peek() == "burst")
            {
                _i++;
                burst = Count(Next("a burst size"));
                string? burstUnit = Peek();
                if (burstUnit is "packets" or "bytes" or "kbytes" or "mbytes")
                {
                    _i++;
                    var (burstMultiplier, burstInBytes) = burstUnit == "packets" ? (1L, false) : ByteUnit(burstUnit);
                    if (burstInBytes != bytes)
                    {
                        throw Error(burstUnit, bytes ? "a burst in bytes for a rate in bytes" : "a burst in packets for a rate in packets");
                    }
                    burst *= burstMultiplier;
                }
                else if (bytes)
                {
                    burst *= multiplier;
                }
            }
            _rule = _rule with { LimitRate = value * multiplier, LimitUnitSeconds = seconds, LimitBurst = burst, LimitBytes = bytes, LimitOver = over };
        }

        private static (long Multiplier, bool Bytes) ByteUnit(string unit) => unit switch
        {
            "packets" => (1L, false),
            "bytes" => (1L, true),
            "kbytes" => (1024L, true),
            "mbytes" => (1024L * 1024, true),
            _ => throw Error(unit, "packets, bytes, kbytes or mbytes"),
        };

        private void RejectWithWords()
        {
            string kind = Next("tcp reset, or icmp type …");
            string text = kind == "tcp" ? $"tcp {Next("reset")}" : $"{kind} {Next("type")} {Next("an ICMP type, like port-unreachable")}";
            var known = RejectKinds.FirstOrDefault(k => k.Name == text);
            if (known.Name is null)
            {
                throw Error(text, $"one of: {string.Join(", ", RejectKinds.Select(k => k.Name))}");
            }
            if (known.With == RejectWith.TcpReset && _rule.Protocol != IpProtocols.Tcp)
            {
                throw new FormatException("'reject with tcp reset' answers TCP only: write 'tcp … reject with tcp reset' (as nft asks).");
            }
            _rule = _rule with { RejectWith = known.With };
        }

        private static int IcmpType(string text, bool v6) =>
            (v6 ? Icmpv6Types : IcmpTypes).FirstOrDefault(t => t.Name == text) is { Name: not null } known ? known.Type
            : byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out byte number) ? number
            : throw Error(text, $"an ICMP type: {string.Join(", ", (v6 ? Icmpv6Types : IcmpTypes).Select(t => t.Name))}, or a number");

        private void Once(string match)
        {
            if (!_given.Add(match))
            {
                throw new FormatException($"'{match}' is given twice in one rule: a packet has one, so write one match (or a set, like {{ a, b }}).");
            }
        }

        private void Check()
        {
            if (_rule.Source is { } s && _rule.Destination is { } d && s.SetName is null && d.SetName is null && s.IsV6 != d.IsV6)
            {
                throw new FormatException("One address is IPv4 and the other IPv6: a packet has one family.");
            }
            if (_rule.Protocols is not null && _rule.Protocol != 0)
            {
                throw new FormatException("A protocol set and a protocol at once: name the protocols in one match.");
            }
        }

        private string? Peek() => _i < words.Count ? words[_i] : null;

        private string Next(string expected) =>
            _i < words.Count ? words[_i++] : throw new FormatException($"The rule ends where {expected} was expected.");
    }

    private static int Number(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) ? value : throw Error(text, "a number");

    /// <summary>A rate's or a burst's amount: up to 2⁴⁰ (a terabyte a second is past any port).</summary>
    private static long Count(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value) && value <= 1L << 40 ? value
            : throw Error(text, "an amount from 0 to 1099511627776");
}
