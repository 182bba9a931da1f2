using System.Runtime.CompilerServices;
using System.Buffers.Binary;
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
}

/// <summary>
/// Connection tracking for the filter's <c>ct state</c>, as the kernel's conntrack does it: a flow's first packet is
/// new, and once a packet has gone the other way the flow is established, in both directions; an ICMP error quoting
/// a tracked flow is related, one quoting nothing known is invalid. Flows are keyed from this host's side (local
/// address and port, remote address and port). A UDP flow expires after <see cref="UnrepliedSeconds"/> without a
/// reply or <see cref="EstablishedSeconds"/> idle; a TCP connection lives as long as Linux's does idle (five days, so
/// that a quiet keep-alive connection behind "ct state established accept" is not cut), down to two minutes once a
/// FIN has passed and ten seconds after a RST. The table is sized once and never grows: when it is full, new flows
/// are not tracked (and stay new), counted, as Linux's "table full". Used by the dataplane thread only.
/// </summary>
public sealed class Conntrack
{
    public const int UnrepliedSeconds = 30;
    public const int EstablishedSeconds = 120;
    /// <summary>Linux's nf_conntrack_tcp_timeout_syn_sent, _established, _time_wait and _close.</summary>
    public const int TcpUnrepliedSeconds = 120, TcpEstablishedSeconds = 432_000, TcpClosingSeconds = 120, TcpResetSeconds = 10;
    private const int SweepEvery = 1024;
    private const int SweepSlots = 256;

    private readonly FlowTable _flows;
    private readonly Entry[] _entries;
    private readonly Stack<int> _free;
    private readonly long _ticksPerSecond;
    private long _breaths;
    private int _sweepCursor;

    private struct Entry
    {
        public bool OriginLocal;
        public bool Replied;
        public TcpPhase Tcp;
        public long LastSeen;
    }

    /// <summary>Where a TCP connection is in its life: which side has sent FIN, or a RST. UDP flows have none.</summary>
    [Flags]
    private enum TcpPhase : byte
    {
        NotTcp = 0,
        Open = 1,
        FinFromOrigin = 2,
        FinFromReply = 4,
        Reset = 8,
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
    /// that a packet of a known flow is looked up once, not twice.
    /// </summary>
    /// <paramref name="key"/> is <see cref="KeyOf"/> the packet and <paramref name="hash"/> its hash, computed once per
    /// packet by the caller for every table that wants them.
    public ConnectionState StateOf(ReadOnlySpan<byte> frame, in ParsedPacket packet, bool outbound, long now, in FlowKey key, ulong hash,
        out int flow)
    {
        flow = -1;
        if (packet.Kind is PacketKind.Udp or PacketKind.Tcp)
        {
            if (!_flows.TryGet(key, hash, out int index) || Expired(index, now))
            {
                return ConnectionState.New;
            }
            flow = index;
            ref var entry = ref _entries[index];
            return entry.Replied || entry.OriginLocal != outbound ? ConnectionState.Established : ConnectionState.New;
        }
        if (packet.Kind == PacketKind.Icmp && !outbound && packet.IcmpType is 3 or 11 or 12)
        {
            return Related(frame, packet, now);
        }
        return ConnectionState.New;
    }

    /// <summary>Prefetches the slot of the flow with this hash: called for a whole batch before its packets are looked up one by one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(ulong hash) => _flows.Prefetch(hash);

    /// <summary>Records a packet the filter let through: creates its flow, or refreshes it (and marks it replied).</summary>
    public void Track(in ParsedPacket packet, bool outbound, long now, int flow = -1)
    {
        if (packet.Kind is not (PacketKind.Udp or PacketKind.Tcp))
        {
            return;
        }
        if (flow >= 0)
        {
            // Found live by StateOf for this very packet: nothing has run on the table since.
            Refresh(ref _entries[flow], packet, outbound, now);
            return;
        }
        var key = KeyOf(packet, outbound);
        bool found = _flows.TryGet(key, out int index);
        if (found && !Expired(index, now))
        {
            Refresh(ref _entries[index], packet, outbound, now);
            return;
        }
        if (found)
        {
            Release(key, index);
        }
        if (_free.Count == 0 || !_flows.TryAdd(key, _free.Peek()))
        {
            TableFull++;
            return;
        }
        index = _free.Pop();
        _entries[index] = new Entry { OriginLocal = outbound, Tcp = packet.Kind == PacketKind.Tcp ? TcpPhase.Open : TcpPhase.NotTcp };
        Refresh(ref _entries[index], packet, outbound, now);
    }

    private static void Refresh(ref Entry entry, in ParsedPacket packet, bool outbound, long now)
    {
        bool fromReply = entry.OriginLocal != outbound;
        entry.Replied |= fromReply;
        entry.LastSeen = now;
        if (entry.Tcp != TcpPhase.NotTcp)
        {
            byte flags = packet.TcpFlags;
            entry.Tcp = (flags & TcpHeader.Rst) != 0 ? entry.Tcp | TcpPhase.Reset
                : (flags & (TcpHeader.Syn | TcpHeader.Ack)) == TcpHeader.Syn ? TcpPhase.Open // the port pair used again, after TIME-WAIT
                : (flags & TcpHeader.Fin) != 0 ? entry.Tcp | (fromReply ? TcpPhase.FinFromReply : TcpPhase.FinFromOrigin)
                : entry.Tcp;
        }
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
                int left = (int)Math.Max(0, (Lifetime(entry) * _ticksPerSecond - (now - entry.LastSeen)) / _ticksPerSecond);
                flows.Add(new TrackedFlow(key, entry.OriginLocal, entry.Replied, StateName(entry), left));
            }
        }
        return end == _flows.Capacity ? -1 : end;
    }

    /// <summary>The state as Linux's conntrack names a TCP connection's; empty for UDP, which has none.</summary>
    private static string StateName(in Entry entry) => entry.Tcp switch
    {
        TcpPhase.NotTcp => "",
        _ when (entry.Tcp & TcpPhase.Reset) != 0 => "CLOSE",
        _ when (entry.Tcp & (TcpPhase.FinFromOrigin | TcpPhase.FinFromReply)) == (TcpPhase.FinFromOrigin | TcpPhase.FinFromReply) => "TIME_WAIT",
        _ when (entry.Tcp & TcpPhase.FinFromOrigin) != 0 => "FIN_WAIT",
        _ when (entry.Tcp & TcpPhase.FinFromReply) != 0 => "CLOSE_WAIT",
        _ => entry.Replied ? "ESTABLISHED" : "SYN_SENT",
    };

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
        // The ICMP error quotes the IP header and the first 8 bytes of the packet we sent.
        var quoted = frame[packet.PayloadOffset..packet.PacketEnd];
        if (quoted.Length < Ipv4Header.Size + 8 || quoted[0] >> 4 != 4)
        {
            return ConnectionState.Invalid;
        }
        int headerLength = (quoted[0] & 0x0F) * 4;
        byte protocol = quoted[9];
        if (headerLength < Ipv4Header.Size || quoted.Length < headerLength + 4 || protocol is not (IpProtocols.Udp or IpProtocols.Tcp))
        {
            return ConnectionState.Invalid;
        }
        var key = new FlowKey(protocol, NetAddress.ReadV4(quoted[12..]), BinaryPrimitives.ReadUInt16BigEndian(quoted[headerLength..]),
            NetAddress.ReadV4(quoted[16..]), BinaryPrimitives.ReadUInt16BigEndian(quoted[(headerLength + 2)..]));
        return _flows.TryGet(key, out int index) && !Expired(index, now) ? ConnectionState.Related : ConnectionState.Invalid;
    }

    private bool Expired(int index, long now)
    {
        ref var entry = ref _entries[index];
        return now - entry.LastSeen > Lifetime(entry) * _ticksPerSecond;
    }

    /// <summary>Seconds a flow lives idle in its state.</summary>
    private static long Lifetime(in Entry entry) => entry.Tcp switch
    {
        TcpPhase.NotTcp => entry.Replied ? EstablishedSeconds : UnrepliedSeconds,
        TcpPhase.Open => entry.Replied ? TcpEstablishedSeconds : TcpUnrepliedSeconds,
        _ when (entry.Tcp & TcpPhase.Reset) != 0 => TcpResetSeconds,
        _ => TcpClosingSeconds,
    };

    private void Release(in FlowKey key, int index)
    {
        _flows.Remove(key);
        _entries[index] = default;
        _free.Push(index);
    }

    /// <summary>A flow's key from our side: our address and port first, whichever way the packet goes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FlowKey KeyOf(in ParsedPacket packet, bool outbound) => outbound
        ? new FlowKey(packet.Protocol, packet.Source, packet.SourcePort, packet.Destination, packet.DestinationPort)
        : new FlowKey(packet.Protocol, packet.Destination, packet.DestinationPort, packet.Source, packet.SourcePort);
}

/// <summary>A tracked flow as `conntrack -L` shows it: keyed from this host's side, <see cref="OriginLocal"/> when this host spoke first.</summary>
public sealed record TrackedFlow(FlowKey Key, bool OriginLocal, bool Replied, string State, int SecondsLeft);
