using System.Runtime.CompilerServices;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Policy;

/// <summary>A rule's packet and byte counters; they outlive policy swaps, kept by the rule's handle.</summary>
public sealed class RuleCounters
{
    public long Packets;
    /// <summary>Bytes from the network header on, as nft counts them (not the Ethernet header).</summary>
    public long Bytes;
}

/// <summary>
/// A rule as the dataplane runs it: every match flattened into fields, tested cheapest first; sets and ranges compiled
/// to <see cref="IntervalSet"/>s; the pcap expression, if any, compiled to native code; an application name turned
/// into the number its sockets carry. As in nft, a match on a field the packet does not have (ports of an ICMP
/// packet, an IPv4 address of an IPv6 one) fails, negated or not.
/// </summary>
public sealed unsafe class CompiledRule
{
    private readonly byte _protocol;
    private readonly ValueTest? _protocols, _sourcePorts, _destinationPorts, _icmpTypes, _lengths, _dscps;
    private readonly AddressTest? _source, _destination;
    private readonly TcpFlagsMatch? _flags;
    private readonly int _appId, _uid, _gid, _pid, _cgroupId, _executableId;
    private readonly bool _matchOwner;
    private readonly ConnectionState _states;
    private readonly bool _statesNegated;
    private readonly TokenBucket? _limit;
    private readonly TokenBucket? _logLimit;
    private readonly BpfFunction? _pcap;

    public CompiledRule(FilterRule rule, AppNames names, RuleCounters counters, Func<string, SetKind, IntervalSet>? sets = null,
        Func<string, Prefix6Set>? sets6 = null)
    {
        IntervalSet Set(string name, SetKind kind) => (sets ?? throw new FormatException($"There is no set '{name}'."))(name, kind);
        Prefix6Set Set6(string name) => (sets6 ?? throw new FormatException($"There is no set '{name}'."))(name);
        ValueTest? Values(RangeMatch? match, SetKind kind) => match is null ? null
            : new ValueTest(match.SetName is { } name ? Set(name, kind) : new IntervalSet(match.Ranges.Select(r => ((uint)r.Low, (uint)r.High))), match.Negate);
        AddressTest? Addresses(AddressMatch? match) => match is null ? null
            : match.SetName is { } name ? match.IsV6 ? new AddressTest(null, Set6(name), match.Negate) : new AddressTest(Set(name, SetKind.Addresses), null, match.Negate)
            : match.IsV6 ? new AddressTest(null, new Prefix6Set(match.Networks), match.Negate)
            : new AddressTest(new IntervalSet(match.Networks.Select(n => n.V4Interval)), null, match.Negate);
        Rule = rule;
        Counters = counters;
        Action = rule.Action;
        _protocol = rule.Protocol;
        _protocols = Values(rule.Protocols, SetKind.Ports);
        _source = Addresses(rule.Source);
        _destination = Addresses(rule.Destination);
        _sourcePorts = Values(rule.SourcePorts, SetKind.Ports);
        _destinationPorts = Values(rule.DestinationPorts, SetKind.Ports);
        _icmpTypes = Values(rule.IcmpTypes, SetKind.Ports);
        _lengths = Values(rule.Lengths, SetKind.Ports);
        _dscps = Values(rule.Dscps, SetKind.Ports);
        _flags = rule.Flags;
        _appId = rule.App is null ? -1 : names.IdOf(rule.App);
        _uid = rule.Uid ?? -1;
        _gid = rule.Gid ?? -1;
        _pid = rule.Pid ?? -1;
        _cgroupId = rule.Cgroup is null ? -1 : names.IdOf(AppNames.CgroupKey(rule.Cgroup));
        _executableId = rule.Executable is null ? -1 : names.IdOf(AppNames.ExecutableKey(rule.Executable));
        _matchOwner = _appId != -1 || _uid != -1 || _gid != -1 || _pid != -1 || _cgroupId != -1 || _executableId != -1;
        _states = rule.CtStates;
        _statesNegated = rule.CtNegate;
        _limit = rule.LimitRate > 0 ? Limit(rule) : null;
        _logLimit = rule.Action == FilterAction.Log ? new TokenBucket(PacketLog.PerRulePerSecond, PacketLog.PerRulePerSecond) : null;
        _pcap = rule.Pcap is null ? null : BpfCompiler.Compile(PcapFilter.Compile(rule.Pcap));
    }

    public FilterRule Rule { get; }
    public FilterAction Action { get; }
    public bool UsesConntrack => _states != ConnectionState.None;

    /// <summary>
    /// True when the rule decides by the 5-tuple, the owning socket and the flow's conntrack state alone (no pcap, no
    /// rate limit, nothing read from the packet's other bytes): its verdict for a flow in a state can be cached.
    /// </summary>
    public bool DependsOnFlowAndState => _pcap is null && _limit is null && Action != FilterAction.Log
        && _lengths is null && _flags is null && _icmpTypes is null && _dscps is null;

    public RuleCounters Counters { get; }

    /// <summary>Whether the packet matches every part of the rule. <paramref name="socket"/> is its owner, if any.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Matches(ReadOnlySpan<byte> frame, in ParsedPacket packet, PipeSocket? socket, ConnectionState state)
    {
        // As nft compiles it: a list is any of the states; != compares the whole value (a packet has one state, so
        // "!= new,invalid" matches every packet, as in nft).
        if (_states != ConnectionState.None && (_statesNegated ? state == _states : (_states & state) == 0))
        {
            return false;
        }
        if (_protocol != 0 && packet.Protocol != _protocol)
        {
            return false;
        }
        if (_protocols is not null && !_protocols.Matches(packet.Protocol))
        {
            return false;
        }
        if ((_source is not null && !_source.Matches(packet.Source)) || (_destination is not null && !_destination.Matches(packet.Destination)))
        {
            return false;
        }
        if (_dscps is not null && !_dscps.Matches(packet.Dscp))
        {
            return false;
        }
        if (_lengths is not null && !_lengths.Matches(packet.IpTotalLength))
        {
            return false;
        }
        if (_icmpTypes is not null && (packet.Kind is not (PacketKind.Icmp or PacketKind.IcmpV6) || !_icmpTypes.Matches(packet.IcmpType)))
        {
            return false;
        }
        if (_flags is not null && (packet.Kind != PacketKind.Tcp || !_flags.Matches(packet.TcpFlags)))
        {
            return false;
        }
        if ((_sourcePorts is not null || _destinationPorts is not null) && packet.Kind is not (PacketKind.Udp or PacketKind.Tcp))
        {
            return false;
        }
        if ((_sourcePorts is not null && !_sourcePorts.Matches(packet.SourcePort))
            || (_destinationPorts is not null && !_destinationPorts.Matches(packet.DestinationPort)))
        {
            return false;
        }
        if (_matchOwner)
        {
            if (socket is null
                || (_appId != -1 && socket.AppId != _appId) || (_uid != -1 && socket.OwnerUid != _uid)
                || (_gid != -1 && socket.OwnerGid != _gid) || (_pid != -1 && socket.OwnerPid != _pid)
                || (_cgroupId != -1 && socket.CgroupId != _cgroupId) || (_executableId != -1 && socket.ExecutableId != _executableId))
            {
                return false;
            }
        }
        if (_pcap is not null)
        {
            fixed (byte* bytes = frame)
            {
                if (_pcap(bytes, frame.Length, frame.Length) == 0)
                {
                    return false;
                }
            }
        }
        // Last, so that only packets matching everything else take tokens.
        if (_limit is not null)
        {
            bool within = _limit.Take(Rule.LimitBytes ? packet.IpTotalLength : 1, System.Diagnostics.Stopwatch.GetTimestamp());
            return within != Rule.LimitOver;
        }
        return true;
    }

    /// <summary>For a log rule: whether this packet may be logged (at most <see cref="PacketLog.PerRulePerSecond"/> a second).</summary>
    public bool MayLog(long now) => _logLimit?.Take(1, now) ?? false;

    /// <summary>
    /// nft's token bucket: a packet limit holds <c>burst</c> packets; a byte limit holds one unit's rate plus the burst,
    /// so that a packet larger than the burst alone still passes a bucket that is full.
    /// </summary>
    private static TokenBucket Limit(FilterRule rule)
    {
        double perSecond = (double)rule.LimitRate / rule.LimitUnitSeconds;
        return rule.LimitBytes
            ? new TokenBucket(perSecond, rule.LimitRate + rule.LimitBurst)
            : new TokenBucket(perSecond, Math.Max(1, rule.LimitBurst));
    }

    /// <summary>A compiled value match: is the value in the set (or, negated, not).</summary>
    private sealed class ValueTest(IntervalSet set, bool negate)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool Matches(uint value) => set.Contains(value) != negate;
    }

    /// <summary>
    /// A compiled address match: IPv4 networks (a rule's own or an ipv4_addr set's), or IPv6 ones (a rule's own or an
    /// ipv6_addr set's); a packet of the other family never matches.
    /// </summary>
    private sealed class AddressTest(IntervalSet? v4, Prefix6Set? v6, bool negate)
    {
        public bool Matches(NetAddress address) => v4 is not null
            ? address.IsV4 && v4.Contains(address.V4) != negate
            : !address.IsV4 && v6!.Contains(address) != negate;
    }
}
