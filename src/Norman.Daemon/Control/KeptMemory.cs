using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Daemon.Control;

/// <summary>
/// The memory of a connection's closed sockets that its application keeps mapped for its next binds (at most
/// <see cref="ControlProtocol.MaxKeptMemory"/>), emptied beyond its header page. A bind that reuses one answers without a
/// memfd and the application maps nothing and touches no new page: on this project's virtual machine the first touch
/// of a page through a new mapping costs 25–45 µs, the most of an open after the round trip. Handed back only over the
/// connection it was granted on (one process, one identity), never to another: memory an application had is never
/// another's. Each counts as one of its user's sockets (<see cref="SocketTable.TryHoldKept"/>).
/// </summary>
public sealed class KeptMemory(SocketTable sockets, int uid)
{
    private readonly record struct Kept(long Id, SharedMemory Region, int SlotCount, bool Tcp);

    private readonly List<Kept> _kept = new();
    private bool _ended;

    /// <summary>Memory kept now (for tests).</summary>
    public int Count
    {
        get
        {
            lock (_kept)
            {
                return _kept.Count;
            }
        }
    }

    /// <summary>
    /// Keeps a closed socket's memory under the socket's id; false, and the caller frees it, when the connection has
    /// ended, keeps its most already, or its user is at a limit.
    /// </summary>
    public bool TryKeep(long id, SharedMemory region, int slotCount, bool tcp)
    {
        lock (_kept)
        {
            if (_ended || _kept.Count >= ControlProtocol.MaxKeptMemory || !sockets.TryHoldKept(uid, region.Length))
            {
                return false;
            }
            _kept.Add(new Kept(id, region, slotCount, tcp));
            return true;
        }
    }

    /// <summary>
    /// Kept memory of this geometry among what the application says it still maps (<paramref name="stillMapped"/>), taken
    /// for a bind; null when there is none. Memory the application no longer names is freed: it unmapped it.
    /// </summary>
    public (long Id, SharedMemory Region)? Take(IReadOnlyCollection<long>? stillMapped, int slotCount, bool tcp)
    {
        lock (_kept)
        {
            for (int i = _kept.Count - 1; i >= 0; i--)
            {
                if (stillMapped is null || !stillMapped.Contains(_kept[i].Id))
                {
                    Free(_kept[i]);
                    _kept.RemoveAt(i);
                }
            }
            int found = _kept.FindIndex(kept => kept.SlotCount == slotCount && kept.Tcp == tcp);
            if (found < 0)
            {
                return null;
            }
            var taken = _kept[found];
            _kept.RemoveAt(found);
            sockets.ReleaseKept(uid, taken.Region.Length);
            return (taken.Id, taken.Region);
        }
    }

    /// <summary>The connection ended: frees all of it, and keeps nothing more.</summary>
    public void EndAll()
    {
        lock (_kept)
        {
            _ended = true;
            _kept.ForEach(Free);
            _kept.Clear();
        }
    }

    private void Free(Kept kept)
    {
        sockets.ReleaseKept(uid, kept.Region.Length);
        kept.Region.Dispose();
    }
}
