using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// An open-addressing hash table from <see cref="FlowKey"/> to a non-negative int (a socket slot, a conntrack entry),
/// owned by the dataplane thread. Linear probing over one array of slots, key and value side by side, so that a
/// lookup in a table far larger than the caches misses once, not twice; deletion shifts entries back instead of
/// leaving tombstones, so lookups stay short however long the table lives. It doubles when 70% full: that
/// allocates, but only when a socket is added (a control command), never while forwarding. A key's home slot is its
/// hash scaled to the table's size (the high half of hash × capacity, Lemire's fastrange), not masked, so that a table
/// sized once for a number of entries (connection tracking's) is 1.7 slots an entry, not the next power of two above
/// 10/7 of them: up to half the memory a flow costs.
/// </summary>
public sealed class FlowTable
{
    private const int Empty = -1;
    private Slot[] _slots;

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
            // 1.7 slots an entry: at most 59% full, so a lookup for a flow not there (each new flow's) probes about 3.5
            // slots, not the 6 of a table 70% full, and a flow costs 82 bytes of table (48-byte slots), within the
            // 128 bytes a tracked flow may cost in all.
            initialCapacity = Math.Max(initialCapacity, (int)Math.Min(1L << 30, (long)maxCount * 17 / 10 + 1));
        }
        _slots = NewSlots(Math.Max(16, initialCapacity));
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
        var slots = _slots;
        int index = Home(hash, slots.Length);
        while (true)
        {
            ref var slot = ref slots[index];
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
            index = Next(index, slots.Length);
        }
    }

    /// <summary>The key's first slot: the hash scaled to the table (its high bits decide, as a good hash's all do).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Home(ulong hash, int capacity) => (int)Math.BigMul(hash, (ulong)capacity, out _);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Next(int index, int capacity) => index + 1 == capacity ? 0 : index + 1;

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
            Sse.Prefetch0(Unsafe.AsPointer(ref _slots[Home(hash, _slots.Length)]));
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
        int index = Home(key.Hash(), _slots.Length);
        while (_slots[index].Value != Empty)
        {
            if (_slots[index].Key == key)
            {
                _slots[index].Value = value;
                return;
            }
            index = Next(index, _slots.Length);
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
        int index = Home(key.Hash(), _slots.Length);
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
            index = Next(index, _slots.Length);
        }
        // Backward-shift deletion: move later entries of the probe run into the hole when their home allows it.
        int hole = index;
        int next = Next(hole, _slots.Length);
        while (_slots[next].Value != Empty)
        {
            int home = Home(_slots[next].Key.Hash(), _slots.Length);
            bool canMove = hole <= next ? home <= hole || home > next : home <= hole && home > next;
            if (canMove)
            {
                _slots[hole] = _slots[next];
                hole = next;
            }
            next = Next(next, _slots.Length);
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
