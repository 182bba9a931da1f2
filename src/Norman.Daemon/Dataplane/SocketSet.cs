namespace Norman.Daemon.Dataplane;

/// <summary>
/// The sockets the dataplane serves, by slot (the number the flow table stores), plus a dense list of the
/// active ones for the TX scheduler to walk. Changed only on the dataplane thread, between batches.
/// </summary>
public sealed class SocketSet
{
    private PipeSocket?[] _bySlot = new PipeSocket?[64];
    private PipeSocket[] _active = new PipeSocket[64];
    private readonly Stack<int> _freeSlots = new();
    private int _nextSlot;

    public int Count { get; private set; }

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
        _active[Count++] = socket;
    }

    public void Remove(PipeSocket socket)
    {
        int index = Array.IndexOf(_active, socket, 0, Count);
        if (index < 0)
        {
            return;
        }
        _active[index] = _active[Count - 1];
        _active[--Count] = null!;
        _bySlot[socket.Slot] = null;
        _freeSlots.Push(socket.Slot);
        socket.Slot = -1;
    }
}
