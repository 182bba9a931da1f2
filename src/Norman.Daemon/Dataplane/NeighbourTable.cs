using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// IP address → MAC, as the kernel's neighbour table (ARP's for IPv4, neighbour discovery's for IPv6), with its states:
/// <list type="bullet">
/// <item>incomplete: asked for (an ARP request at most once a second); packets for it wait; after
/// <see cref="MaxProbes"/> unanswered requests it has failed, and its packets are dropped, until a fresh round
/// of probes a second later;</item>
/// <item>reachable: answered within <see cref="ReachableSeconds"/>;</item>
/// <item>stale: older than that; still used, and re-confirmed with a request at most once a second; after
/// <see cref="MaxProbes"/> unanswered requests it is forgotten (expired) and resolved afresh.</item>
/// </list>
/// Entries are learned from ARP replies and from requests addressed to us; a resolved address's MAC changes only by
/// a reply to a request Norman sent to re-confirm it. Bounded: at most <see cref="MaxEntries"/> addresses, so a flood
/// of ARP cannot grow it.
/// </summary>
public sealed class NeighbourTable
{
    public const int MaxEntries = 4096;
    public const int MaxProbes = 3;
    /// <summary>Linux's base_reachable_time is 30 s (randomised between 15 and 45).</summary>
    public const int ReachableSeconds = 30;

    private readonly Dictionary<NetAddress, Entry> _entries = new(MaxEntries);
    private readonly long _retryTicks;
    private readonly long _reachableTicks;

    public NeighbourTable(long ticksPerSecond)
    {
        _retryTicks = ticksPerSecond;
        _reachableTicks = ticksPerSecond * ReachableSeconds;
    }

    public int Count => _entries.Count;

    public enum Lookup
    {
        Resolved,
        /// <summary>Asked for and not answered yet: the caller should hold the packet.</summary>
        Pending,
        /// <summary>Not answered after every probe: the caller should drop the packet.</summary>
        Failed,
    }

    /// <summary>What <see cref="Learn"/> did with a claim.</summary>
    public enum Learned
    {
        Yes,
        /// <summary>Refused: the address is resolved to another MAC, and this is not the answer to our probe.</summary>
        MacChangeRefused,
        /// <summary>Refused: the table is full (of entries our own lookups have not been asked to make room for).</summary>
        TableFull,
    }

    private struct Entry
    {
        public MacAddress Mac;
        public bool Resolved;
        public int Probes;
        public long LastProbe;
        public long ConfirmedAt;
        public bool Permanent;
        /// <summary>Learned from someone else's request, not from an exchange we started: the first to go when full.</summary>
        public bool Unsolicited;
    }

    /// <summary>Finds the MAC of <paramref name="address"/>; <paramref name="shouldProbe"/> says to ask for it now (an ARP request, or a neighbour solicitation).</summary>
    public Lookup Resolve(NetAddress address, long now, out MacAddress mac, out bool shouldProbe)
    {
        shouldProbe = false;
        if (!_entries.TryGetValue(address, out var entry))
        {
            mac = default;
            if (_entries.Count >= MaxEntries && !MakeRoom(now))
            {
                return Lookup.Failed;
            }
            _entries[address] = new Entry { Probes = 1, LastProbe = now };
            shouldProbe = true;
            return Lookup.Pending;
        }
        mac = entry.Mac;
        bool canProbe = now - entry.LastProbe >= _retryTicks;
        if (entry.Resolved)
        {
            if (entry.Permanent || now - entry.ConfirmedAt <= _reachableTicks || !canProbe)
            {
                return Lookup.Resolved;
            }
            if (entry.Probes >= MaxProbes)
            {
                // Stale and silent through every probe: expired. Start over as a new, incomplete entry.
                _entries[address] = new Entry { Probes = 1, LastProbe = now };
                shouldProbe = true;
                return Lookup.Pending;
            }
            entry.Probes++;
            entry.LastProbe = now;
            _entries[address] = entry;
            shouldProbe = true;
            return Lookup.Resolved;
        }
        if (!canProbe)
        {
            return entry.Probes >= MaxProbes ? Lookup.Failed : Lookup.Pending;
        }
        // A failed entry gets a fresh round of probes after the retry interval, as Linux's FAILED state does.
        entry.Probes = entry.Probes >= MaxProbes ? 1 : entry.Probes + 1;
        entry.LastProbe = now;
        _entries[address] = entry;
        shouldProbe = true;
        return Lookup.Pending;
    }

    /// <summary>
    /// Records an address's MAC, from an ARP reply or a request that named us: reachable as of now. An address already
    /// resolved keeps its MAC unless this is a <paramref name="reply"/> while Norman is re-confirming it (an exchange it
    /// started): anyone else's claim to it is refused, so that a forged ARP cannot divert its traffic. False when refused.
    /// </summary>
    public Learned Learn(NetAddress address, MacAddress mac, long now, bool reply)
    {
        bool known = _entries.TryGetValue(address, out var existing);
        if (existing.Permanent)
        {
            return Learned.MacChangeRefused;
        }
        if (!known && _entries.Count >= MaxEntries)
        {
            return Learned.TableFull;
        }
        if (known && existing.Resolved && existing.Mac != mac && !(reply && existing.Probes > 0))
        {
            return Learned.MacChangeRefused;
        }
        // Unsolicited until it answers a probe of ours (an entry our lookup made, or one we are re-confirming).
        bool unsolicited = !known || (existing.Unsolicited && !(reply && existing.Probes > 0));
        _entries[address] = new Entry { Mac = mac, Resolved = true, ConfirmedAt = now, LastProbe = now, Unsolicited = unsolicited };
        return Learned.Yes;
    }

    /// <summary>
    /// Makes room for a lookup of ours in a full table, as Linux's forced garbage collection does: an entry that only
    /// others' requests put there, or one that went stale or failed, is forgotten. A flood of forged requests can fill
    /// the table, but not keep Norman from resolving the neighbours it needs.
    /// </summary>
    private bool MakeRoom(long now)
    {
        foreach (var (address, entry) in _entries)
        {
            if (!entry.Permanent && (entry.Unsolicited || !entry.Resolved || now - entry.ConfirmedAt > _reachableTicks))
            {
                _entries.Remove(address);
                return true;
            }
        }
        return false;
    }

    /// <summary>A static entry, as `ip neigh add … nud permanent`: never probed, never replaced by ARP.</summary>
    public void AddPermanent(NetAddress address, MacAddress mac) =>
        _entries[address] = new Entry { Mac = mac, Resolved = true, Permanent = true };

    public bool TryGet(NetAddress address, out MacAddress mac)
    {
        if (_entries.TryGetValue(address, out var entry) && entry.Resolved)
        {
            mac = entry.Mac;
            return true;
        }
        mac = default;
        return false;
    }
}
