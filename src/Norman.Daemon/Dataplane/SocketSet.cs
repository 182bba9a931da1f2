namespace Norman.Daemon.Dataplane;

/// <summary>
/// The sockets the dataplane serves, by slot (the number the flow table stores), plus a dense list of the
/// active ones for the TX scheduler to walk, and the users' ready maps its sockets have bits in. Changed only on the
/// dataplane thread, between batches.
/// </summary>
public sealed class SocketSet
{
    private PipeSocket?[] _bySlot = new PipeSocket?[64];
    private PipeSocket[] _active = new PipeSocket[64];
    private readonly Stack<int> _freeSlots = new();
    private int _nextSlot;
    private readonly List<ReadyBitmap> _readyMaps = new();

    public int Count { get; private set; }

    /// <summary>Sockets served without a ready bit: while there are any, an idle breath looks at every pipe.</summary>
    public int Unmarked { get; private set; }

    /// <summary>The ready maps with at least one socket served, 0 ≤ i &lt; <see cref="ReadyMapCount"/>.</summary>
    public ReadyBitmap ReadyMap(int index) => _readyMaps[index];
    public int ReadyMapCount => _readyMaps.Count;

    public PipeSocket this[int slot] => _bySlot[slot]!;

    /// <summary>The socket in a slot, or null for a slot out of range or free.</summary>
    public PipeSocket? TryGet(int slot) => (uint)slot < (uint)_bySlot.Length ? _bySlot[slot] : null;

    /// <summary>The i-th active socket, 0 ≤ i &lt; <see cref="Count"/>.</summary>
    public PipeSocket Active(int index) => _active[index];

    /// <summary>True when the slot still holds the socket with this id (masked to 40 bits).</summary>
    public bool IsCurrent(int slot, long maskedId) =>
        slot >= 0 && slot < _bySlot.Length && _bySlot[slot] is { } socket && (socket.Id & 0xFF_FFFF_FFFF) == maskedId;

    public void Add(PipeSocket socket)
    {
        int slot = _freeSlots.Count > 0 ? _freeSlots.Pop() : _nextSlot++;
        if (slot >= _bySlot.Length)
        {
            Array.Resize(ref _bySlot, _bySlot.Length * 2);
        }
        if (Count == _active.Length)
        {
            Array.Resize(ref _active, _active.Length * 2);
        }
        socket.Slot = slot;
        _bySlot[slot] = socket;
        socket.ActiveIndex = Count;
        _active[Count++] = socket;
        if (socket.Ready is { } ready)
        {
            if (ready.Members == 0)
            {
                _readyMaps.Add(ready);
            }
            ready.Attach(socket);
        }
        else
        {
            Unmarked++;
        }
    }

    public void Remove(PipeSocket socket)
    {
        int index = socket.ActiveIndex;
        if (index < 0 || index >= Count || !ReferenceEquals(_active[index], socket))
        {
            return;
        }
        var moved = _active[Count - 1];
        _active[index] = moved;
        moved.ActiveIndex = index;
        _active[--Count] = null!;
        socket.ActiveIndex = -1;
        if (socket.Ready is { } ready)
        {
            ready.Detach(socket);
            if (ready.Members == 0)
            {
                _readyMaps.Remove(ready);
            }
        }
        else
        {
            Unmarked--;
        }
        _bySlot[socket.Slot] = null;
        _freeSlots.Push(socket.Slot);
        socket.Slot = -1;
    }
}
