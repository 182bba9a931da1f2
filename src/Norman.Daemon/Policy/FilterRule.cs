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
    /// <summary>Drop, and tell the sender: ICMP port unreachable for an arriving datagram.</summary>
    Reject,
    /// <summary>Count the packet and go on to the next rule.</summary>
    Count,
    /// <summary>Log the packet (rate-limited) with its owner, and go on to the next rule.</summary>
    Log,
}

/// <summary>
/// One filter rule, as an administrator wrote it and as the dataplane matches it. Every match is optional;
/// a rule with none matches every packet. Addresses and ports are the packet's own (source and destination),
/// as in nftables; <c>app</c>, <c>uid</c>, <c>gid</c> and <c>pid</c> match the process that owns the socket the
/// packet belongs to — its destination on ingress, its sender on egress.
/// </summary>
public sealed record FilterRule
{
    public long Handle { get; init; }
    public Chain Chain { get; init; }
    public byte Protocol { get; init; }
    public NetAddress SourceNetwork { get; init; }
    public int SourcePrefix { get; init; } = -1;
    public NetAddress DestinationNetwork { get; init; }
    public int DestinationPrefix { get; init; } = -1;
    public ushort SourcePortLow { get; init; }
    public ushort SourcePortHigh { get; init; } = ushort.MaxValue;
    public ushort DestinationPortLow { get; init; }
    public ushort DestinationPortHigh { get; init; } = ushort.MaxValue;
    public string? App { get; init; }
    public int? Uid { get; init; }
    public int? Gid { get; init; }
    public int? Pid { get; init; }
    /// <summary>Named sets the packet's source or destination address, or port, must be in (<c>@name</c>).</summary>
    public string? SourceSet { get; init; }
    public string? DestinationSet { get; init; }
    public string? SourcePortSet { get; init; }
    public string? DestinationPortSet { get; init; }
    /// <summary>The owner's cgroup path, as /proc/PID/cgroup shows it (e.g. /system.slice/kvdb.service).</summary>
    public string? Cgroup { get; init; }
    /// <summary>The owner's executable, as /proc/PID/exe links to it when the daemon accepted its connection.</summary>
    public string? Executable { get; init; }
    /// <summary>The DSCP the packet carries (0–63); -1 for any.</summary>
    public int Dscp { get; init; } = -1;
    /// <summary>ICMP type (echo-request = 8…); -1 for any.</summary>
    public int IcmpType { get; init; } = -1;
    /// <summary>TCP flags that must be set, within <see cref="TcpFlagsMask"/> (all flags when the mask is 0).</summary>
    public byte TcpFlags { get; init; }
    public byte TcpFlagsMask { get; init; }
    /// <summary>IP packet length range (iptables' -m length).</summary>
    public int LengthLow { get; init; }
    public int LengthHigh { get; init; } = int.MaxValue;
    /// <summary>A rate limit, in packets (or bytes, with <see cref="LimitBytes"/>) per second; 0 for none.</summary>
    public long LimitRate { get; init; }
    public long LimitBurst { get; init; }
    public bool LimitBytes { get; init; }
    /// <summary>True for "limit rate over": match the packets beyond the rate instead of those within it.</summary>
    public bool LimitOver { get; init; }
    /// <summary>For a log rule: text put before each logged line.</summary>
    public string? LogPrefix { get; init; }
    /// <summary>Connection-tracking states, any of which matches; None matches every packet.</summary>
    public ConnectionState CtStates { get; init; }
    /// <summary>A libpcap expression the whole frame must match.</summary>
    public string? Pcap { get; init; }
    public FilterAction Action { get; init; }

    /// <summary>The rule in the syntax <see cref="FilterRuleParser"/> reads, so that list, save and restore agree.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        if (SourcePrefix >= 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{(SourceNetwork.IsV4 ? "ip" : "ip6")} saddr {SourceNetwork}/{SourcePrefix} ");
        }
        if (SourceSet is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"ip saddr @{SourceSet} ");
        }
        if (DestinationPrefix >= 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{(DestinationNetwork.IsV4 ? "ip" : "ip6")} daddr {DestinationNetwork}/{DestinationPrefix} ");
        }
        if (DestinationSet is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"ip daddr @{DestinationSet} ");
        }
        if (Protocol != 0)
        {
            text.Append(Protocol == IpProtocols.IcmpV6 ? "icmpv6" : IpProtocols.Name(Protocol)).Append(' ');
        }
        if (Dscp >= 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"dscp {Dscp} ");
        }
        if (IcmpType >= 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"type {FilterRuleParser.IcmpTypeName(IcmpType)} ");
        }
        if (TcpFlags != 0 || TcpFlagsMask != 0)
        {
            text.Append("flags ").Append(FilterRuleParser.TcpFlagNames(TcpFlags));
            if (TcpFlagsMask != 0)
            {
                text.Append(" / ").Append(FilterRuleParser.TcpFlagNames(TcpFlagsMask));
            }
            text.Append(' ');
        }
        AppendRange(text, "sport", SourcePortLow, SourcePortHigh);
        if (SourcePortSet is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"sport @{SourcePortSet} ");
        }
        AppendRange(text, "dport", DestinationPortLow, DestinationPortHigh);
        if (DestinationPortSet is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"dport @{DestinationPortSet} ");
        }
        if (App is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"app {App} ");
        }
        if (Cgroup is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"cgroup {Cgroup} ");
        }
        if (Executable is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"exe {Executable} ");
        }
        if (Uid is { } uid)
        {
            text.Append(CultureInfo.InvariantCulture, $"uid {uid} ");
        }
        if (Gid is { } gid)
        {
            text.Append(CultureInfo.InvariantCulture, $"gid {gid} ");
        }
        if (Pid is { } pid)
        {
            text.Append(CultureInfo.InvariantCulture, $"pid {pid} ");
        }
        if (CtStates != ConnectionState.None)
        {
            var names = Enum.GetValues<ConnectionState>()
                .Where(s => s != ConnectionState.None && CtStates.HasFlag(s))
                .Select(s => s.ToString().ToLowerInvariant());
            text.Append(CultureInfo.InvariantCulture, $"ct state {string.Join(',', names)} ");
        }
        if (LengthLow != 0 || LengthHigh != int.MaxValue)
        {
            text.Append(LengthLow == LengthHigh ? string.Create(CultureInfo.InvariantCulture, $"length {LengthLow} ")
                : LengthHigh == int.MaxValue ? string.Create(CultureInfo.InvariantCulture, $"length {LengthLow}- ")
                : string.Create(CultureInfo.InvariantCulture, $"length {LengthLow}-{LengthHigh} "));
        }
        if (LimitRate > 0)
        {
            string unit = LimitBytes ? "bytes" : "packets";
            text.Append(CultureInfo.InvariantCulture, $"limit rate {(LimitOver ? "over " : "")}{LimitRate} {unit}/second burst {LimitBurst} ");
        }
        if (Pcap is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"pcap \"{Pcap}\" ");
        }
        text.Append(Action.ToString().ToLowerInvariant());
        if (LogPrefix is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $" prefix \"{LogPrefix}\"");
        }
        return text.ToString();
    }

    private static void AppendRange(StringBuilder text, string name, ushort low, ushort high)
    {
        if (low == 0 && high == ushort.MaxValue)
        {
            return;
        }
        text.Append(low == high ? string.Create(CultureInfo.InvariantCulture, $"{name} {low} ") : string.Create(CultureInfo.InvariantCulture, $"{name} {low}-{high} "));
    }
}
