using System.Collections.Frozen;
using System.Runtime.CompilerServices;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Policy;

/// <summary>A rule's packet and byte counters; they outlive policy swaps, kept by the rule's handle.</summary>
public sealed class RuleCounters
{
    public long Packets;
    public long Bytes;
}

/// <summary>
/// A rule as the dataplane runs it: every match flattened into fields, tested cheapest first; the pcap
/// expression, if any, compiled to native code; an application name turned into the number its sockets carry.
/// </summary>
public sealed unsafe class CompiledRule
{
    private readonly byte _protocol;
    private readonly uint _sourceNetwork, _sourceMask, _destinationNetwork, _destinationMask;
    private readonly bool _matchSource, _matchDestination;
    private readonly Network6? _source6, _destination6;
    private readonly ushort _sourceLow, _sourceHigh, _destinationLow, _destinationHigh;
    private readonly int _appId, _uid, _gid, _pid;
    private readonly bool _matchOwner;
    private readonly ConnectionState _states;
    private readonly int _icmpType;
    private readonly int _dscp;
    private readonly byte _tcpFlags, _tcpMask;
    private readonly int _lengthLow, _lengthHigh;
    private readonly int _cgroupId, _executableId;
    private readonly TokenBucket? _limit;
    private readonly TokenBucket? _logLimit;
    private readonly FrozenSet<uint>? _sourceSet, _destinationSet, _sourcePortSet, _destinationPortSet;
    private readonly BpfFunction? _pcap;

    public CompiledRule(FilterRule rule, AppNames names, RuleCounters counters, Func<string, SetKind, FrozenSet<uint>>? sets = null)
    {
        FrozenSet<uint>? Set(string? name, SetKind kind) =>
            name is null ? null : (sets ?? throw new FormatException($"There is no set '{name}'."))(name, kind);
        _sourceSet = Set(rule.SourceSet, SetKind.Addresses);
        _destinationSet = Set(rule.DestinationSet, SetKind.Addresses);
        _sourcePortSet = Set(rule.SourcePortSet, SetKind.Ports);
        _destinationPortSet = Set(rule.DestinationPortSet, SetKind.Ports);
        Rule = rule;
        Counters = counters;
        Action = rule.Action;
        _protocol = rule.Protocol;
        if (rule.SourcePrefix >= 0 && !rule.SourceNetwork.IsV4)
        {
            _source6 = new Network6(rule.SourceNetwork, rule.SourcePrefix);
        }
        else
        {
            (_matchSource, _sourceNetwork, _sourceMask) = Network(rule.SourceNetwork, rule.SourcePrefix);
        }
        if (rule.DestinationPrefix >= 0 && !rule.DestinationNetwork.IsV4)
        {
            _destination6 = new Network6(rule.DestinationNetwork, rule.DestinationPrefix);
        }
        else
        {
            (_matchDestination, _destinationNetwork, _destinationMask) = Network(rule.DestinationNetwork, rule.DestinationPrefix);
        }
        _sourceLow = rule.SourcePortLow;
        _sourceHigh = rule.SourcePortHigh;
        _destinationLow = rule.DestinationPortLow;
        _destinationHigh = rule.DestinationPortHigh;
        _appId = rule.App is null ? -1 : names.IdOf(rule.App);
        _uid = rule.Uid ?? -1;
        _gid = rule.Gid ?? -1;
        _pid = rule.Pid ?? -1;
        _matchOwner = _appId != -1 || _uid != -1 || _gid != -1 || _pid != -1;
        _states = rule.CtStates;
        _icmpType = rule.IcmpType;
        _dscp = rule.Dscp;
        _tcpFlags = rule.TcpFlags;
        _tcpMask = rule.TcpFlagsMask != 0 ? rule.TcpFlagsMask : rule.TcpFlags;
        _lengthLow = rule.LengthLow;
        _lengthHigh = rule.LengthHigh;
        _cgroupId = rule.Cgroup is null ? -1 : names.IdOf(AppNames.CgroupKey(rule.Cgroup));
        _executableId = rule.Executable is null ? -1 : names.IdOf(AppNames.ExecutableKey(rule.Executable));
        _matchOwner |= _cgroupId != -1 || _executableId != -1;
        _limit = rule.LimitRate > 0 ? new TokenBucket(rule.LimitRate, rule.LimitBurst) : null;
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
    public bool DependsOnFlowAndState => _pcap is null && _limit is null
        && Action != FilterAction.Log && _lengthLow == 0 && _lengthHigh == int.MaxValue && _tcpMask == 0 && _icmpType < 0 && _dscp < 0;
    public RuleCounters Counters { get; }

    /// <summary>Whether the packet matches every part of the rule. <paramref name="socket"/> is its owner, if any.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Matches(ReadOnlySpan<byte> frame, in ParsedPacket packet, PipeSocket? socket, ConnectionState state)
    {
        if (_states != ConnectionState.None && (_states & state) == 0)
        {
            return false;
        }
        if (_protocol != 0 && packet.Protocol != _protocol)
        {
            return false;
        }
        if (_matchSource && (!packet.Source.IsV4 || (packet.Source.V4 & _sourceMask) != _sourceNetwork))
        {
            return false;
        }
        if (_matchDestination && (!packet.Destination.IsV4 || (packet.Destination.V4 & _destinationMask) != _destinationNetwork))
        {
            return false;
        }
        if ((_source6 is not null && !_source6.Contains(packet.Source)) || (_destination6 is not null && !_destination6.Contains(packet.Destination)))
        {
            return false;
        }
        if (_dscp >= 0 && packet.Dscp != _dscp)
        {
            return false;
        }
        if (_icmpType >= 0 && (packet.Kind != PacketKind.Icmp || packet.IcmpType != _icmpType))
        {
            return false;
        }
        if (_tcpMask != 0 && (packet.Kind != PacketKind.Tcp || (packet.TcpFlags & _tcpMask) != _tcpFlags))
        {
            return false;
        }
        int ipLength = packet.IpLength;
        if (ipLength < _lengthLow || ipLength > _lengthHigh)
        {
            return false;
        }
        if ((_sourceSet is not null && (!packet.Source.IsV4 || !_sourceSet.Contains(packet.Source.V4)))
            || (_destinationSet is not null && (!packet.Destination.IsV4 || !_destinationSet.Contains(packet.Destination.V4)))
            || (_sourcePortSet is not null && !_sourcePortSet.Contains(packet.SourcePort))
            || (_destinationPortSet is not null && !_destinationPortSet.Contains(packet.DestinationPort)))
        {
            return false;
        }
        if (packet.SourcePort < _sourceLow || packet.SourcePort > _sourceHigh
            || packet.DestinationPort < _destinationLow || packet.DestinationPort > _destinationHigh)
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
            bool within = _limit.Take(Rule.LimitBytes ? ipLength : 1, System.Diagnostics.Stopwatch.GetTimestamp());
            return within != Rule.LimitOver;
        }
        return true;
    }

    /// <summary>For a log rule: whether this packet may be logged (at most <see cref="PacketLog.PerRulePerSecond"/> a second).</summary>
    public bool MayLog(long now) => _logLimit?.Take(1, now) ?? false;

    /// <summary>An IPv6 network as masked halves.</summary>
    private sealed class Network6
    {
        private readonly ulong _high, _low, _maskHigh, _maskLow;

        public Network6(NetAddress network, int prefix)
        {
            (_maskHigh, _maskLow) = FilterRuleParser.Mask6(prefix);
            _high = network.High & _maskHigh;
            _low = network.Low & _maskLow;
        }

        public bool Contains(NetAddress address) =>
            !address.IsV4 && (address.High & _maskHigh) == _high && (address.Low & _maskLow) == _low;
    }

    private static (bool, uint, uint) Network(NetAddress network, int prefix)
    {
        if (prefix < 0)
        {
            return (false, 0, 0);
        }
        uint mask = prefix == 0 ? 0 : uint.MaxValue << (32 - prefix);
        return (true, network.V4 & mask, mask);
    }
}
