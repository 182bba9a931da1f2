using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>The connection-tracking states a filter rule can match, as nftables names them.</summary>
[Flags]
public enum ConnectionState : byte
{
    None = 0,
    New = 1,
    Established = 2,
    Related = 4,
    Invalid = 8,
    /// <summary>
    /// Not tracked at all (nft's "untracked"): as on Linux, IPv6 neighbour discovery, router discovery and multicast
    /// listener messages, which belong to no connection; every other IP packet is tracked while a ct rule is in force.
    /// </summary>
    Untracked = 16,
}

/// <summary>
/// Connection tracking for the filter's <c>ct state</c>, as the kernel's conntrack does it. A flow's first packet is
/// new; once a packet has gone the other way it is established, both ways. TCP is followed as Linux follows it
/// (<see cref="TcpTracking"/>: its state machine and window checks), so a segment no connection could send — a first
/// packet that is a SYN-ACK, FIN or RST, a flag combination no stack sends, a sequence or acknowledgement outside the
/// windows — is <c>invalid</c>. ICMP queries (echo, timestamp, information, address mask) are flows by their id, and
/// a reply without its request is invalid; an ICMP error quoting a tracked flow is related, one quoting nothing known
/// is invalid, and so is any other ICMP message. Flows are keyed from this host's side (local address and port, remote
/// address and port; the id for ICMP). Each lives idle as long as Linux's does in its state (UDP 30 s unreplied, 2 min
/// replied; TCP 5 days established, 2 min after a FIN, 10 s after a RST; ICMP 30 s). The table is sized once and never
/// grows: when it is full, new flows are not tracked (and stay new), counted, as Linux's "table full". Used by the
/// dataplane thread only.
/// </summary>
public sealed class Conntrack
{
    public const int UnrepliedSeconds = 30;
    public const int EstablishedSeconds = 120;
    public const int IcmpSeconds = 30;
    /// <summary>Linux's nf_conntrack_tcp_timeout_syn_sent, _established, _time_wait and _close.</summary>
    public const int TcpUnrepliedSeconds = 120, TcpEstablishedSeconds = 432_000, TcpClosingSeconds = 120, TcpResetSeconds = 10;
    private const int SweepEvery = 1024;
    private const int SweepSlots = 256;

    private readonly FlowTable _flows;
    private readonly Entry[] _entries;
    private readonly Stack<int> _free;
    private readonly long _ticksPerSecond;
    private readonly long _ticksPerMillisecond;
    private long _clockTicks = long.MinValue;
    private uint _clockMilliseconds;
    private long _breaths;
    private int _sweepCursor;

    private struct Entry
    {
        public bool OriginLocal;
        public bool Replied;
        public byte Protocol;
        /// <summary>The TCP connection's state; None for a UDP or ICMP flow.</summary>
        public TcpTrackState Tcp;
        /// <summary>When the flow was last seen, in milliseconds of the dataplane's clock (wrapping; lifetimes are far shorter).</summary>
        public uint LastSeen;
        public TcpSide Original;
        public TcpSide Reply;
    }

    public Conntrack(int maxFlows, long ticksPerSecond)
    {
        _flows = new FlowTable(16, maxFlows);
        _entries = new Entry[maxFlows];
        _free = new Stack<int>(maxFlows);
        for (int i = maxFlows - 1; i >= 0; i--)
        {
            _free.Push(i);
        }
        _ticksPerSecond = ticksPerSecond;
        _ticksPerMillisecond = Math.Max(1, ticksPerSecond / 1000);
    }

    public int Count => _flows.Count;

    /// <summary>Memory the table holds, all of it taken at start: the hash table (keys and entry numbers), the entries and the free list.</summary>
    public long BytesAllocated => _flows.BytesAllocated + (long)_entries.Length * (Unsafe.SizeOf<Entry>() + sizeof(int));

    /// <summary>Flows the table can hold.</summary>
    public int Capacity => _entries.Length;
    public long TableFull { get; private set; }

    /// <summary>The state of a packet before the filter decides on it. <paramref name="outbound"/>: sent by one of our sockets.</summary>
    public ConnectionState StateOf(ReadOnlySpan<byte> frame, in ParsedPacket packet, bool outbound, long now)
    {
        var key = KeyOf(packet, outbound);
        return StateOf(frame, packet, outbound, now, key, key.Hash(), out _);
    }

    /// <summary>
    /// The state of a packet before the filter decides on it. <paramref name="outbound"/>: sent by one of our sockets.
    /// <paramref name="flow"/> is its live flow's entry, or -1: hand it to <see cref="Track"/> for the same packet, so
    /// that a packet of a known flow is looked up once, not twice. Nothing changes here: only an accepted packet is tracked.
    /// </summary>
    /// <paramref name="key"/> is <see cref="KeyOf"/> the packet and <paramref name="hash"/> its hash, computed once per
    /// packet by the caller for every table that wants them (UDP and TCP; ICMP's key is made here).
    public ConnectionState StateOf(ReadOnlySpan<byte> frame, in ParsedPacket packet, bool outbound, long now, in FlowKey key, ulong hash,
        out int flow)
    {
        flow = -1;
        switch (packet.Kind)
        {
            case PacketKind.Udp:
                if (!Live(key, hash, now, out flow))
                {
                    return ConnectionState.New;
                }
                return Settled(_entries[flow], outbound);
            case PacketKind.Tcp:
                return TcpState(frame, packet, outbound, now, key, hash, out flow);
            case PacketKind.Icmp or PacketKind.IcmpV6 when IsQuery(packet):
                var icmpKey = IcmpKeyOf(frame, packet, outbound);
                if (!Live(icmpKey, icmpKey.Hash(), now, out flow))
                {
                    return IsRequest(packet) ? ConnectionState.New : ConnectionState.Invalid; // a reply to nothing
                }
                ref var query = ref _entries[flow];
                bool fromReply = query.OriginLocal != outbound;
                return fromReply == IsRequest(packet) ? ConnectionState.Invalid : Settled(query, outbound);
            case PacketKind.Icmp or PacketKind.IcmpV6 when !outbound && IsError(packet):
                return Related(frame, packet, now);
            case PacketKind.IcmpV6 when packet.IcmpType is >= 130 and <= 137:
                return ConnectionState.Untracked; // multicast listeners, router and neighbour discovery: Linux leaves them untracked
            case PacketKind.Icmp or PacketKind.IcmpV6:
                return ConnectionState.Invalid; // router advertisements, redirects without a flow, extended echo…: no conntrack of Linux's takes them
            default:
                return ConnectionState.New;
        }
    }

    private ConnectionState TcpState(ReadOnlySpan<byte> frame, in ParsedPacket packet, bool outbound, long now, in FlowKey key, ulong hash, out int flow)
    {
        if (!Live(key, hash, now, out flow) || Reopens(_entries[flow], packet, outbound))
        {
            flow = -1;
            if (!TcpTracking.MayOpen(packet.TcpFlags))
            {
                return ConnectionState.Invalid;
            }
            // Check it as its opening would be checked (a SYN always passes; a pick-up sets what it shows).
            var fresh = new Entry { OriginLocal = outbound };
            return TcpTracking.Apply(ref fresh.Tcp, ref fresh.Original, ref fresh.Reply, frame, packet, fromReply: false)
                ? ConnectionState.New : ConnectionState.Invalid;
        }
        var copy = _entries[flow];
        return TcpTracking.Apply(ref copy.Tcp, ref copy.Original, ref copy.Reply, frame, packet, copy.OriginLocal != outbound)
            ? Settled(copy, outbound) : ConnectionState.Invalid;
    }

    /// <summary>A SYN of the side that opened, on a connection that closed (TIME-WAIT or CLOSE): the port pair opened again, a new flow.</summary>
    private static bool Reopens(in Entry entry, in ParsedPacket packet, bool outbound) =>
        entry.OriginLocal == outbound && (packet.TcpFlags & (TcpHeader.Syn | TcpHeader.Ack | TcpHeader.Rst)) == TcpHeader.Syn
        && entry.Tcp is TcpTrackState.TimeWait or TcpTrackState.Close;

    /// <summary>Established once a packet has gone the reply way, or for one that goes it; new before.</summary>
    private static ConnectionState Settled(in Entry entry, bool outbound) =>
        entry.Replied || entry.OriginLocal != outbound ? ConnectionState.Established : ConnectionState.New;

    private bool Live(in FlowKey key, ulong hash, long now, out int flow)
    {
        if (_flows.TryGet(key, hash, out flow) && !Expired(flow, now))
        {
            return true;
        }
        flow = -1;
        return false;
    }

    /// <summary>Prefetches the slot of the flow with this hash: called for a whole batch before its packets are looked up one by one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(ulong hash) => _flows.Prefetch(hash);

    /// <summary>
    /// Records a packet the filter let through: creates its flow, or updates it (replied, TCP's state and windows). An
    /// invalid packet changes nothing, as in Linux.
    /// </summary>
    public void Track(ReadOnlySpan<byte> frame, in ParsedPacket packet, bool outbound, long now, int flow = -1)
    {
        if (flow >= 0)
        {
            Refresh(ref _entries[flow], frame, packet, outbound, now); // found by StateOf for this very packet
            return;
        }
        FlowKey key;
        switch (packet.Kind)
        {
            case PacketKind.Udp or PacketKind.Tcp:
                key = KeyOf(packet, outbound);
                break;
            case PacketKind.Icmp or PacketKind.IcmpV6 when IsQuery(packet):
                key = IcmpKeyOf(frame, packet, outbound);
                break;
            default:
                return;
        }
        if (_flows.TryGet(key, out int found))
        {
            if (!Expired(found, now) && !(packet.Kind == PacketKind.Tcp && Reopens(_entries[found], packet, outbound)))
            {
                flow = found;
            }
            else
            {
                Release(key, found);
            }
        }
        if (flow >= 0)
        {
            Refresh(ref _entries[flow], frame, packet, outbound, now);
            return;
        }
        bool opens = packet.Kind switch
        {
            PacketKind.Tcp => TcpTracking.MayOpen(packet.TcpFlags),
            PacketKind.Icmp or PacketKind.IcmpV6 => IsRequest(packet),
            _ => true,
        };
        if (!opens)
        {
            return;
        }
        if (_free.Count == 0 || !_flows.TryAdd(key, _free.Peek()))
        {
            TableFull++;
            return;
        }
        int index = _free.Pop();
        _entries[index] = new Entry { OriginLocal = outbound, Protocol = key.Protocol };
        Refresh(ref _entries[index], frame, packet, outbound, now);
        if (!outbound && ((packet.Kind == PacketKind.Icmp && packet.IcmpType == IcmpHeader.EchoRequestV4)
            || (packet.Kind == PacketKind.IcmpV6 && packet.IcmpType == IcmpHeader.EchoRequestV6)))
        {
            // The host answers a ping itself, and its reply does not pass the filter: count it as gone out, as
            // Linux's conntrack sees the kernel's own reply leave.
            _entries[index].Replied = true;
        }
    }

    private void Refresh(ref Entry entry, ReadOnlySpan<byte> frame, in ParsedPacket packet, bool outbound, long now)
    {
        bool fromReply = entry.OriginLocal != outbound;
        if (packet.Kind == PacketKind.Tcp)
        {
            RefreshTcp(ref entry, frame, packet, fromReply, now);
            return;
        }
        entry.Replied |= fromReply;
        entry.LastSeen = Clock(now);
    }

    /// <summary>A TCP segment moves its connection along only if it is valid there (its state and windows).</summary>
    private void RefreshTcp(ref Entry entry, ReadOnlySpan<byte> frame, in ParsedPacket packet, bool fromReply, long now)
    {
        var copy = entry;
        if (!TcpTracking.Apply(ref copy.Tcp, ref copy.Original, ref copy.Reply, frame, packet, fromReply))
        {
            return; // invalid: accepted by the filter, perhaps, but no part of the connection's life
        }
        entry = copy;
        entry.Replied |= fromReply;
        entry.LastSeen = Clock(now);
    }

    /// <summary>
    /// Appends the live flows among <paramref name="slots"/> of the table's slots from <paramref name="from"/> to
    /// <paramref name="flows"/>, as `conntrack -L` lists them; returns the slot to go on from, or -1 at the end. The
    /// dataplane lists a few thousand slots a breath, so that a full table never holds it up.
    /// </summary>
    public int List(int from, int slots, List<TrackedFlow> flows, long now)
    {
        int end = (int)Math.Min(_flows.Capacity, (long)from + slots);
        for (int slot = from; slot < end; slot++)
        {
            if (_flows.TryGetSlot(slot, out var key, out int index) && !Expired(index, now))
            {
                ref var entry = ref _entries[index];
                long idle = (long)(Clock(now) - entry.LastSeen);
                int left = (int)Math.Max(0, (Lifetime(entry) * 1000 - idle) / 1000);
                flows.Add(new TrackedFlow(key, entry.OriginLocal, entry.Replied, key.Protocol == IpProtocols.Tcp ? TcpTracking.Name(entry.Tcp) : "", left));
            }
        }
        return end == _flows.Capacity ? -1 : end;
    }

    /// <summary>Reclaims a few expired flows every so often, so the work per breath stays bounded.</summary>
    public void Sweep(long now)
    {
        if (++_breaths % SweepEvery != 0)
        {
            return;
        }
        // Over the table's slots, where the keys are: a flow that a removal shifts past the cursor waits a lap.
        for (int n = 0; n < SweepSlots; n++)
        {
            _sweepCursor = (_sweepCursor + 1) % _flows.Capacity;
            if (_flows.TryGetSlot(_sweepCursor, out var key, out int index) && Expired(index, now))
            {
                Release(key, index);
            }
        }
    }

    private ConnectionState Related(ReadOnlySpan<byte> frame, in ParsedPacket packet, long now)
    {
        // The error quotes the packet we sent: its flow, from our side, is the flow the error is related to.
        if (!QuotedPacket.TryRead(frame[packet.PayloadOffset..packet.PacketEnd], out var quoted))
        {
            return ConnectionState.Invalid;
        }
        var key = new FlowKey(quoted.Protocol, quoted.Source, quoted.SourcePort, quoted.Destination, quoted.DestinationPort);
        return _flows.TryGet(key, out int index) && !Expired(index, now) ? ConnectionState.Related : ConnectionState.Invalid;
    }

    /// <summary>The dataplane's clock in milliseconds; divided once a breath (every packet of a breath has the same <paramref name="now"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Clock(long now)
    {
        if (now != _clockTicks)
        {
            _clockTicks = now;
            _clockMilliseconds = (uint)(now / _ticksPerMillisecond);
        }
        return _clockMilliseconds;
    }

    private bool Expired(int index, long now)
    {
        ref var entry = ref _entries[index];
        long idle = (uint)(Clock(now) - entry.LastSeen);
        return idle > Lifetime(entry) * 1000L;
    }

    /// <summary>Seconds a flow lives idle in its state.</summary>
    private static long Lifetime(in Entry entry) => entry.Protocol switch
    {
        IpProtocols.Tcp => TcpTracking.Timeout(entry.Tcp),
        IpProtocols.Icmp or IpProtocols.IcmpV6 => IcmpSeconds,
        _ => entry.Replied ? EstablishedSeconds : UnrepliedSeconds,
    };

    private void Release(in FlowKey key, int index)
    {
        _flows.Remove(key);
        _entries[index] = default;
        _free.Push(index);
    }

    /// <summary>ICMP's queries (echo, timestamp, information, address mask) and their replies: the messages conntrack follows as flows.</summary>
    /// <summary>An ICMP query or its answer (echo, timestamp, information, address mask); ICMPv6's echo.</summary>
    private static bool IsQuery(in ParsedPacket packet) => packet.Kind == PacketKind.IcmpV6
        ? packet.IcmpType is IcmpHeader.EchoRequestV6 or IcmpHeader.EchoReplyV6
        : packet.IcmpType is 0 or 8 or 13 or 14 or 15 or 16 or 17 or 18;

    private static bool IsRequest(in ParsedPacket packet) => packet.Kind == PacketKind.IcmpV6
        ? packet.IcmpType == IcmpHeader.EchoRequestV6
        : packet.IcmpType is 8 or 13 or 15 or 17;

    /// <summary>The request a query's packet belongs to: its own type, or for an answer the request's (ICMP's is one less, echo's 8 for 0).</summary>
    private static ushort RequestType(in ParsedPacket packet) => IsRequest(packet) ? packet.IcmpType
        : packet.Kind == PacketKind.IcmpV6 ? IcmpHeader.EchoRequestV6
        : (ushort)(packet.IcmpType == 0 ? 8 : packet.IcmpType - 1);

    /// <summary>The errors that quote the packet they answer: ICMP's (icmp_is_err), and ICMPv6's 1 to 4 (unreachable, too big, time, parameter).</summary>
    private static bool IsError(in ParsedPacket packet) => packet.Kind == PacketKind.IcmpV6
        ? packet.IcmpType is >= 1 and <= 4
        : packet.IcmpType is 3 or 4 or 5 or 11 or 12;

    /// <summary>A flow's key from our side: our address and port first, whichever way the packet goes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FlowKey KeyOf(in ParsedPacket packet, bool outbound) => outbound
        ? new FlowKey(packet.Protocol, packet.Source, packet.SourcePort, packet.Destination, packet.DestinationPort)
        : new FlowKey(packet.Protocol, packet.Destination, packet.DestinationPort, packet.Source, packet.SourcePort);

    /// <summary>
    /// An ICMP query's key, as Linux's tuple has it: the addresses from our side, the query's id in the local port and the
    /// request's type in the remote one (a request and its reply share it; an echo and a timestamp query do not).
    /// </summary>
    private static FlowKey IcmpKeyOf(ReadOnlySpan<byte> frame, in ParsedPacket packet, bool outbound)
    {
        ushort id = packet.PacketEnd - packet.TransportOffset >= 6 ? BinaryPrimitives.ReadUInt16BigEndian(frame[(packet.TransportOffset + 4)..]) : (ushort)0;
        ushort query = RequestType(packet);
        return outbound
            ? new FlowKey(packet.Protocol, packet.Source, id, packet.Destination, query)
            : new FlowKey(packet.Protocol, packet.Destination, id, packet.Source, query);
    }
}

/// <summary>A tracked flow as `conntrack -L` shows it: keyed from this host's side, <see cref="OriginLocal"/> when this host spoke first.</summary>
public sealed record TrackedFlow(FlowKey Key, bool OriginLocal, bool Replied, string State, int SecondsLeft);
