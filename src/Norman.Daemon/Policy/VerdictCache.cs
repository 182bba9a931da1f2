using System.Runtime.CompilerServices;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// Remembers, per flow, what a chain decided: the verdict and the rules that matched (for their counters), keyed
/// by the 5-tuple (as conntrack keys it, our side first, with the hash the filter computed once for both), the owning socket, the flow's conntrack state and the policy generation, so an established flow
/// costs one hash lookup however many rules there are. Direct-mapped and fixed in size (a collision just
/// re-evaluates); a new policy generation makes every entry stale at once. Only for chains whose rules depend on
/// nothing but the flow, its owner and its state (no pcap expression, no rate limit). Used by the dataplane thread only.
/// </summary>
public sealed class VerdictCache
{
    public const int MaxMatchedRules = 4;
    private const int Size = 1 << 14;

    private readonly Entry[] _entries = new Entry[Size];

    public long Hits { get; private set; }
    public long Misses { get; private set; }

    private struct Entry
    {
        public FlowKey Key;
        public long Generation;
        public long SocketId;
        public FilterAction Verdict;
        public ConnectionState State;
        public byte MatchedCount;
        public long DecidedBy;
        public int Rule0, Rule1, Rule2, Rule3;
    }

    /// <summary>The cached verdict for this packet's flow, counting the rules that decided it; false on a miss.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(in FlowKey key, ulong hash, long socketId, ConnectionState state, PolicySnapshot policy, CompiledRule[] rules, int frameLength,
        out FilterAction verdict, out long decidedBy)
    {
        ref var entry = ref _entries[(int)hash & (Size - 1)];
        if (entry.Generation != policy.Generation || entry.SocketId != socketId || entry.State != state || entry.Key != key)
        {
            Misses++;
            verdict = default;
            decidedBy = 0;
            return false;
        }
        Hits++;
        for (int m = 0; m < entry.MatchedCount; m++)
        {
            var counters = rules[m switch { 0 => entry.Rule0, 1 => entry.Rule1, 2 => entry.Rule2, _ => entry.Rule3 }].Counters;
            counters.Packets++;
            counters.Bytes += frameLength;
        }
        verdict = entry.Verdict;
        decidedBy = entry.DecidedBy;
        return true;
    }

    public void Store(in FlowKey key, ulong hash, long socketId, ConnectionState state, PolicySnapshot policy, FilterAction verdict, long decidedBy,
        ReadOnlySpan<int> matched)
    {
        if (matched.Length > MaxMatchedRules)
        {
            return;
        }
        ref var entry = ref _entries[(int)hash & (Size - 1)];
        entry.Key = key;
        entry.Generation = policy.Generation;
        entry.SocketId = socketId;
        entry.State = state;
        entry.Verdict = verdict;
        entry.DecidedBy = decidedBy;
        entry.MatchedCount = (byte)matched.Length;
        entry.Rule0 = matched.Length > 0 ? matched[0] : 0;
        entry.Rule1 = matched.Length > 1 ? matched[1] : 0;
        entry.Rule2 = matched.Length > 2 ? matched[2] : 0;
        entry.Rule3 = matched.Length > 3 ? matched[3] : 0;
    }
}
