using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Control;

/// <summary>
/// The users' ready maps (<see cref="ReadyBitmap"/>), one per uid, made at a user's first socket and let go with its
/// last (after the dataplane has let go of that socket): a user's processes share theirs, no user's sockets have bits
/// in another's, and a user who leaves leaves nothing behind.
/// </summary>
public sealed class ReadyBitmaps(DescriptorReserve descriptors) : IDisposable
{
    private readonly Dictionary<int, ReadyBitmap> _byUid = new();
    private bool _disposed;

    /// <summary>
    /// A map and a bit for a new socket of <paramref name="uid"/>; (null, -1) when the daemon has no descriptor left
    /// for a new map or the user's map is full: the socket works without one, found by the dataplane's sweep.
    /// </summary>
    public (ReadyBitmap? Map, int Bit) Take(int uid)
    {
        ReadyBitmap? map;
        lock (_byUid)
        {
            if (_disposed)
            {
                return (null, -1);
            }
            if (!_byUid.TryGetValue(uid, out map))
            {
                // The map's descriptor is the daemon's own, as the pool's are; a user cannot make uids to spend them.
                if (!descriptors.TryTake(1, administrator: true))
                {
                    return (null, -1);
                }
                map = ReadyBitmap.Create(uid, Return);
                _byUid[uid] = map;
            }
            // Under the table's lock, so that a bit given back by the user's last socket cannot let the map go between.
            int bit = map.TakeBit();
            return bit < 0 ? (null, -1) : (map, bit);
        }
    }

    /// <summary>A closed socket's bit comes back (<see cref="ReadyBitmap.Release"/>); the map goes with its last bit.</summary>
    internal void Return(ReadyBitmap map, int bit)
    {
        lock (_byUid)
        {
            if (map.ReturnBit(bit) && !_disposed && _byUid.TryGetValue(map.Uid, out var current) && current == map)
            {
                _byUid.Remove(map.Uid);
                map.Dispose();
                descriptors.Return(1, administrator: true);
            }
        }
    }

    /// <summary>Users with a map now.</summary>
    public int Count
    {
        get
        {
            lock (_byUid)
            {
                return _byUid.Count;
            }
        }
    }

    /// <summary>Unmaps every map: after the dataplane has stopped.</summary>
    public void Dispose()
    {
        lock (_byUid)
        {
            _disposed = true;
            foreach (var map in _byUid.Values)
            {
                map.Dispose();
                descriptors.Return(1, administrator: true);
            }
            _byUid.Clear();
        }
    }
}
