using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// IPv4 address → MAC, as the kernel's neighbour table. Entries are learned from ARP replies and from requests
/// addressed to us. An unresolved next hop is asked for again at most once a second; packets for it wait in their
/// pipe (they are not consumed) until it resolves, and are dropped once it has failed three times.
/// Bounded: at most <see cref="MaxEntries"/> addresses, so a flood of ARP cannot grow it.
/// </summary>
public sealed class NeighbourTable
{
    public const int MaxEntries = 4096;
    public const int MaxProbes = 3;

    private readonly Dictionary<uint, Entry> _entries = new(MaxEntries);
    private readonly long _retryTicks;

    public NeighbourTable(long ticksPerSecond) => _retryTicks = ticksPerSecond;

    public int Count => _entries.Count;

    public enum Lookup
    {
        Resolved,
        /// <summary>Asked for and not answered yet: the caller should hold the packet.</summary>
        Pending,
        /// <summary>Not answered after every probe: the caller should drop the packet.</summary>
        Failed,
    }

    private struct Entry
    {
        public MacAddress Mac;
        public bool Resolved;
        public int Probes;
        public long LastProbe;
    }

    /// <summary>Finds the MAC of <paramref name="address"/>; <paramref name="shouldProbe"/> says when to send an ARP request now.</summary>
    public Lookup Resolve(uint address, long now, out MacAddress mac, out bool shouldProbe)
    {
        shouldProbe = false;
        if (_entries.TryGetValue(address, out var entry))
        {
            mac = entry.Mac;
            if (entry.Resolved)
            {
                return Lookup.Resolved;
            }
            if (now - entry.LastProbe < _retryTicks)
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
        mac = default;
        if (_entries.Count >= MaxEntries)
        {
            return Lookup.Failed;
        }
        _entries[address] = new Entry { Probes = 1, LastProbe = now };
        shouldProbe = true;
        return Lookup.Pending;
    }

    /// <summary>Records an address's MAC, from an ARP reply or a request that named us.</summary>
    public void Learn(uint address, MacAddress mac)
    {
        if (!_entries.ContainsKey(address) && _entries.Count >= MaxEntries)
        {
            return;
        }
        _entries[address] = new Entry { Mac = mac, Resolved = true };
    }

    public bool TryGet(uint address, out MacAddress mac)
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
