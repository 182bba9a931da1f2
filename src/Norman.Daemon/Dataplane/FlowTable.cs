using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// An open-addressing hash table from <see cref="FlowKey"/> to a non-negative int (a socket slot, a conntrack entry),
/// owned by the dataplane thread. Linear probing over one array of slots, key and value side by side, so that a
/// lookup in a table far larger than the caches misses once, not twice; deletion shifts entries back instead of
/// leaving tombstones, so lookups stay short however long the table lives. It doubles when 70% full: that
/// allocates, but only when a socket is added (a control command), never while forwarding.
/// </summary>
public sealed class FlowTable
{
    private const int Empty = -1;
    private Slot[] _slots;
    private int _mask;

    private readonly int _maxCount;

    [StructLayout(LayoutKind.Auto)]
    private struct Slot
    {
        public FlowKey Key;
        public int Value;
    }

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
        _slots = NewSlots(capacity);
        _mask = capacity - 1;
    }

    public int Count { get; private set; }
    public int Capacity => _slots.Length;

    /// <summary>Bytes the table holds at its current size (keys and values, not what the values stand for).</summary>
    public long BytesAllocated => (long)_slots.Length * Unsafe.SizeOf<Slot>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(in FlowKey key, out int value) => TryGet(key, key.Hash(), out value);

    /// <summary>A lookup whose key's <see cref="FlowKey.Hash"/> the caller has already computed (once for several tables).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(in FlowKey key, ulong hash, out int value)
    {
        int index = (int)hash & _mask;
        while (true)
        {
            ref var slot = ref _slots[index];
            if (slot.Value == Empty)
            {
                value = Empty;
                return false;
            }
            if (slot.Key == key)
            {
                value = slot.Value;
                return true;
            }
            index = (index + 1) & _mask;
        }
    }

    /// <summary>
    /// Asks the CPU to bring the home slot of the key with this hash into the cache now, so that a lookup a little later (after the rest
    /// of the batch has been prefetched) does not wait for memory: a table of a million flows is far larger than the
    /// caches. A prefetch never faults, so the slot's address may go stale if the table grows meanwhile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Prefetch(ulong hash)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(Unsafe.AsPointer(ref _slots[(int)hash & _mask]));
        }
    }

    /// <summary>The entry in slot <paramref name="index"/> (0 to <see cref="Capacity"/> − 1), if any: for a sweeper that walks the table.</summary>
    public bool TryGetSlot(int index, out FlowKey key, out int value)
    {
        ref var slot = ref _slots[index];
        key = slot.Key;
        value = slot.Value;
        return value != Empty;
    }

    /// <summary>Adds or replaces. Values must be non-negative.</summary>
    public void Set(in FlowKey key, int value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        if ((Count + 1) * 10 > _slots.Length * 7)
        {
            Grow();
        }
        int index = (int)key.Hash() & _mask;
        while (_slots[index].Value != Empty)
        {
            if (_slots[index].Key == key)
            {
                _slots[index].Value = value;
                return;
            }
            index = (index + 1) & _mask;
        }
        _slots[index] = new Slot { Key = key, Value = value };
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
            if (_slots[index].Value == Empty)
            {
                return false;
            }
            if (_slots[index].Key == key)
            {
                break;
            }
            index = (index + 1) & _mask;
        }
        // Backward-shift deletion: move later entries of the probe run into the hole when their home allows it.
        int hole = index;
        int next = (hole + 1) & _mask;
        while (_slots[next].Value != Empty)
        {
            int home = (int)_slots[next].Key.Hash() & _mask;
            bool canMove = hole <= next ? home <= hole || home > next : home <= hole && home > next;
            if (canMove)
            {
                _slots[hole] = _slots[next];
                hole = next;
            }
            next = (next + 1) & _mask;
        }
        _slots[hole] = new Slot { Value = Empty };
        Count--;
        return true;
    }

    private static Slot[] NewSlots(int capacity)
    {
        var slots = new Slot[capacity];
        slots.AsSpan().Fill(new Slot { Value = Empty });
        return slots;
    }

    private void Grow()
    {
        var old = _slots;
        _slots = NewSlots(old.Length * 2);
        _mask = _slots.Length - 1;
        Count = 0;
        foreach (var slot in old)
        {
            if (slot.Value != Empty)
            {
                Set(slot.Key, slot.Value);
            }
        }
    }
}
