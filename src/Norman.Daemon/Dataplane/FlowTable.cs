using System.Runtime.CompilerServices;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// An open-addressing hash table from <see cref="FlowKey"/> to a socket slot, owned by the dataplane thread.
/// Linear probing over parallel arrays; deletion shifts entries back instead of leaving tombstones, so lookups
/// stay short however long the table lives. It doubles when 70% full: that allocates, but only when a socket
/// is added (a control command), never while forwarding.
/// </summary>
public sealed class FlowTable
{
    private const int Empty = -1;
    private FlowKey[] _keys;
    private int[] _values;
    private int _mask;

    private readonly int _maxCount;

    /// <summary>
    /// A table that starts with room for <paramref name="initialCapacity"/> slots; with <paramref name="maxCount"/>
    /// it is sized for that many entries once and never grows (a table the dataplane fills itself, which must not
    /// allocate), and <see cref="TryAdd"/> refuses past it.
    /// </summary>
    public FlowTable(int initialCapacity = 1 << 12, int maxCount = int.MaxValue)
    {
        _maxCount = maxCount;
        if (maxCount != int.MaxValue)
        {
            initialCapacity = Math.Max(initialCapacity, (int)Math.Min(1L << 30, (long)maxCount * 10 / 7 + 1));
        }
        int capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, initialCapacity));
        _keys = new FlowKey[capacity];
        _values = new int[capacity];
        Array.Fill(_values, Empty);
        _mask = capacity - 1;
    }

    public int Count { get; private set; }
    public int Capacity => _keys.Length;

    /// <summary>Bytes of table per entry at the current size (keys and values, not counting the socket).</summary>
    public long BytesAllocated => (long)_keys.Length * (Unsafe.SizeOf<FlowKey>() + sizeof(int));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(in FlowKey key, out int value)
    {
        int index = (int)key.Hash() & _mask;
        while (true)
        {
            int found = _values[index];
            if (found == Empty)
            {
                value = Empty;
                return false;
            }
            if (_keys[index] == key)
            {
                value = found;
                return true;
            }
            index = (index + 1) & _mask;
        }
    }

    /// <summary>Adds or replaces. Values must be non-negative.</summary>
    public void Set(in FlowKey key, int value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        if ((Count + 1) * 10 > _keys.Length * 7)
        {
            Grow();
        }
        int index = (int)key.Hash() & _mask;
        while (_values[index] != Empty)
        {
            if (_keys[index] == key)
            {
                _values[index] = value;
                return;
            }
            index = (index + 1) & _mask;
        }
        _keys[index] = key;
        _values[index] = value;
        Count++;
    }

    /// <summary>Adds a new key without ever growing the table; false when it holds <c>maxCount</c> entries already.</summary>
    public bool TryAdd(in FlowKey key, int value)
    {
        if (Count >= _maxCount)
        {
            return false;
        }
        Set(key, value);
        return true;
    }

    public bool Remove(in FlowKey key)
    {
        int index = (int)key.Hash() & _mask;
        while (true)
        {
            if (_values[index] == Empty)
            {
                return false;
            }
            if (_keys[index] == key)
            {
                break;
            }
            index = (index + 1) & _mask;
        }
        // Backward-shift deletion: move later entries of the probe run into the hole when their home allows it.
        int hole = index;
        int next = (hole + 1) & _mask;
        while (_values[next] != Empty)
        {
            int home = (int)_keys[next].Hash() & _mask;
            bool canMove = hole <= next ? home <= hole || home > next : home <= hole && home > next;
            if (canMove)
            {
                _keys[hole] = _keys[next];
                _values[hole] = _values[next];
                hole = next;
            }
            next = (next + 1) & _mask;
        }
        _keys[hole] = default;
        _values[hole] = Empty;
        Count--;
        return true;
    }

    private void Grow()
    {
        var oldKeys = _keys;
        var oldValues = _values;
        _keys = new FlowKey[oldKeys.Length * 2];
        _values = new int[oldKeys.Length * 2];
        Array.Fill(_values, Empty);
        _mask = _keys.Length - 1;
        Count = 0;
        for (int i = 0; i < oldKeys.Length; i++)
        {
            if (oldValues[i] != Empty)
            {
                Set(oldKeys[i], oldValues[i]);
            }
        }
    }
}
