using System.Globalization;
using System.Text;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>The two chains: packets arriving for this host's sockets, and packets its sockets send.</summary>
public enum Chain
{
    Ingress,
    Egress,
}

/// <summary>What a rule (or a chain's policy) does with a packet it matches.</summary>
public enum FilterAction
{
    Accept,
    Drop,
    /// <summary>Drop, and tell the sender (see <see cref="RejectWith"/>).</summary>
    Reject,
    /// <summary>Count the packet and go on to the next rule.</summary>
    Count,
    /// <summary>Log the packet (rate-limited) with its owner, and go on to the next rule.</summary>
    Log,
}

/// <summary>What a reject tells the sender, in nft's words.</summary>
public enum RejectWith
{
    /// <summary>Plain <c>reject</c>: ICMP port unreachable, whatever the protocol (as nft and iptables' REJECT).</summary>
    PortUnreachable,
    /// <summary><c>reject with tcp reset</c>: a TCP reset for TCP (other packets get port unreachable).</summary>
    TcpReset,
    HostUnreachable,
    NetUnreachable,
    ProtocolUnreachable,
    AdminProhibited,
}

/// <summary>
/// One filter rule, as an administrator wrote it and as the dataplane matches it, in nft's words and meanings. Every
/// match is optional; a rule with none matches every packet. Addresses and ports are the packet's own (source and
/// destination), as in nftables; <c>app</c>, <c>exe</c>, <c>uid</c>, <c>gid</c>, <c>pid</c> and <c>cgroup</c> match
/// the process that owns the socket the packet belongs to — its destination on ingress, its sender on egress.
/// A record that compares by value: what <see cref="ToString"/> prints, <see cref="FilterRuleParser"/> reads back equal.
/// </summary>
public sealed record FilterRule
{
    public long Handle { get; init; }
    public Chain Chain { get; init; }
    /// <summary>The transport protocol a rule is about (udp, tcp, icmp, icmpv6); 0 for any.</summary>
    public byte Protocol { get; init; }
    /// <summary><c>meta l4proto</c> (or <c>ip protocol</c>) with a set of protocols or negated; one positive protocol is <see cref="Protocol"/>.</summary>
    public RangeMatch? Protocols { get; init; }
    public AddressMatch? Source { get; init; }
    public AddressMatch? Destination { get; init; }
    public RangeMatch? SourcePorts { get; init; }
    public RangeMatch? DestinationPorts { get; init; }
    public RangeMatch? IcmpTypes { get; init; }
    public TcpFlagsMatch? Flags { get; init; }
    /// <summary><c>ip length</c>: the IP packet's total length, from its header (padding and what the transport says do not count).</summary>
    public RangeMatch? Lengths { get; init; }
    /// <summary><c>ip dscp</c>: the DSCP the packet carries (0–63).</summary>
    public RangeMatch? Dscps { get; init; }
    public string? App { get; init; }
    /// <summary>The owner's executable, as /proc/PID/exe links to it when the daemon accepted its connection.</summary>
    public string? Executable { get; init; }
    /// <summary>The owner's cgroup path, as /proc/PID/cgroup shows it (e.g. /system.slice/kvdb.service).</summary>
    public string? Cgroup { get; init; }
    public int? Uid { get; init; }
    public int? Gid { get; init; }
    public int? Pid { get; init; }
    /// <summary>Connection-tracking states, any of which matches (with <see cref="CtNegate"/>: a state other than exactly this value, as nft's !=); None matches every packet.</summary>
    public ConnectionState CtStates { get; init; }
    public bool CtNegate { get; init; }
    /// <summary>A rate limit: <see cref="LimitRate"/> packets (or bytes, with <see cref="LimitBytes"/>) per <see cref="LimitUnitSeconds"/>; 0 for none.</summary>
    public long LimitRate { get; init; }
    public long LimitUnitSeconds { get; init; } = 1;
    /// <summary>nft's burst: packets the bucket holds (5 unless given), or bytes it holds beyond one unit's rate.</summary>
    public long LimitBurst { get; init; }
    public bool LimitBytes { get; init; }
    /// <summary>True for "limit rate over": match the packets beyond the rate instead of those within it.</summary>
    public bool LimitOver { get; init; }
    /// <summary>A libpcap expression the whole frame must match.</summary>
    public string? Pcap { get; init; }
    public FilterAction Action { get; init; }
    public RejectWith RejectWith { get; init; }
    /// <summary>For a log rule: text put before each logged line.</summary>
    public string? LogPrefix { get; init; }

    /// <summary>The rule in the syntax <see cref="FilterRuleParser"/> reads, so that list, save and restore agree.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        void Add(string part) => text.Append(part).Append(' ');
        if (Source is { } source)
        {
            Add($"{(source.IsV6 ? "ip6" : "ip")} saddr {source}");
        }
        if (Destination is { } destination)
        {
            Add($"{(destination.IsV6 ? "ip6" : "ip")} daddr {destination}");
        }
        if (Protocols is { } protocols)
        {
            Add($"meta l4proto {protocols.Format(r => IpProtocolName(r.Low))}");
        }
        if (Lengths is { } lengths)
        {
            Add($"ip length {lengths}");
        }
        if (Dscps is { } dscps)
        {
            Add($"ip dscp {dscps.Format(r => FilterRuleParser.DscpName(r.Low))}");
        }
        if (Protocol != 0)
        {
            // udp, tcp, icmp and icmpv6 are words of their own; another protocol is a match on its number.
            Add(Protocol is IpProtocols.Udp or IpProtocols.Tcp or IpProtocols.Icmp or IpProtocols.IcmpV6
                ? IpProtocolName(Protocol) : string.Create(CultureInfo.InvariantCulture, $"meta l4proto {Protocol}"));
        }
        if (SourcePorts is { } sourcePorts)
        {
            Add($"sport {sourcePorts}");
        }
        if (DestinationPorts is { } destinationPorts)
        {
            Add($"dport {destinationPorts}");
        }
        if (IcmpTypes is { } types)
        {
            Add($"type {types.Format(r => FilterRuleParser.IcmpTypeName(r.Low, Protocol == IpProtocols.IcmpV6))}");
        }
        if (Flags is { } flags)
        {
            // "tcp" is already there: the flags are its.
            Add(flags.ToString()["tcp ".Length..]);
        }
        if (App is not null)
        {
            Add($"app {RuleWords.Quote(App)}");
        }
        if (Executable is not null)
        {
            Add($"exe {RuleWords.Quote(Executable)}");
        }
        if (Cgroup is not null)
        {
            Add($"cgroup {RuleWords.Quote(Cgroup)}");
        }
        if (Uid is { } uid)
        {
            Add(string.Create(CultureInfo.InvariantCulture, $"uid {uid}"));
        }
        if (Gid is { } gid)
        {
            Add(string.Create(CultureInfo.InvariantCulture, $"gid {gid}"));
        }
        if (Pid is { } pid)
        {
            Add(string.Create(CultureInfo.InvariantCulture, $"pid {pid}"));
        }
        if (CtStates != ConnectionState.None)
        {
            var names = Enum.GetValues<ConnectionState>()
                .Where(s => s != ConnectionState.None && CtStates.HasFlag(s))
                .Select(s => s.ToString().ToLowerInvariant());
            Add($"ct state {(CtNegate ? "!= " : "")}{string.Join(',', names)}");
        }
        if (LimitRate > 0)
        {
            string unit = FilterRuleParser.TimeUnitName(LimitUnitSeconds);
            Add(LimitBytes
                ? string.Create(CultureInfo.InvariantCulture, $"limit rate {(LimitOver ? "over " : "")}{LimitRate} bytes/{unit} burst {LimitBurst} bytes")
                : string.Create(CultureInfo.InvariantCulture, $"limit rate {(LimitOver ? "over " : "")}{LimitRate}/{unit} burst {LimitBurst} packets"));
        }
        if (Pcap is not null)
        {
            Add($"pcap {RuleWords.Quote(Pcap)}");
        }
        text.Append(Action.ToString().ToLowerInvariant());
        if (Action == FilterAction.Reject && RejectWith != RejectWith.PortUnreachable)
        {
            text.Append(" with ").Append(FilterRuleParser.RejectName(RejectWith));
        }
        if (LogPrefix is not null)
        {
            text.Append(" prefix ").Append(RuleWords.Quote(LogPrefix));
        }
        return text.ToString();
    }

    private static string IpProtocolName(int protocol) => protocol switch
    {
        IpProtocols.IcmpV6 => "icmpv6",
        _ => IpProtocols.Name((byte)protocol),
    };
}
