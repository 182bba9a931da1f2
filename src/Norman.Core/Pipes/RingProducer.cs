using System.Runtime.CompilerServices;

namespace Norman.Core.Pipes;

/// <summary>
/// The producing side of a single-producer/single-consumer ring (see <see cref="PipeLayout"/>).
/// Claim a slot, write into it, commit; <see cref="Publish"/> makes a whole batch visible with one ordered store.
/// The consumer's index is read from shared memory only when the cached copy says the ring is full, and is checked:
/// a consumer that reports an impossible index (a hostile or crashed application) makes the ring look full.
/// </summary>
public sealed unsafe class RingProducer
{
    private readonly byte* _ring;
    private readonly byte* _slots;
    private readonly uint _mask;
    private readonly uint _capacity;
    private readonly int _slotSize;
    private uint _producer;
    private uint _cachedConsumer;
    private uint _published;

    /// <summary>
    /// A producer over a ring; <paramref name="resume"/> continues a ring another producer left (a shared wire
    /// reclaimed after a restart) from the indices in memory, instead of from zero.
    /// </summary>
    public RingProducer(byte* ring, int slotCount, int slotSize, bool resume = false)
        : this(ring, ring + PipeLayout.SlotsOffset, slotCount, slotSize, resume)
    {
    }

    /// <summary>A producer over a ring whose slots lie apart from its header (a socket's: see <see cref="PipeLayout"/>).</summary>
    public RingProducer(byte* ring, byte* slots, int slotCount, int slotSize, bool resume = false)
    {
        _ring = ring;
        _slots = slots;
        _capacity = (uint)slotCount;
        _mask = (uint)slotCount - 1;
        _slotSize = slotSize;
        DataCapacity = PipeLayout.SlotDataCapacity(slotSize);
        if (resume)
        {
            _producer = _published = _cachedConsumer = Volatile.Read(ref *(uint*)(ring + PipeLayout.ProducerIndexOffset));
            RefreshConsumer();
        }
    }

    /// <summary>The largest packet a slot holds.</summary>
    public int DataCapacity { get; }

    /// <summary>How many times the consumer's index was found impossible (counted once per observation).</summary>
    public long CorruptConsumerIndex { get; private set; }

    /// <summary>Slots free for writing, refreshing the consumer's index from shared memory only if needed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int FreeSlots()
    {
        uint free = _capacity - (_producer - _cachedConsumer);
        if (free != 0)
        {
            return (int)free;
        }
        RefreshConsumer();
        return (int)(_capacity - (_producer - _cachedConsumer));
    }

    /// <summary>The data area of the next free slot, or an empty span when the ring is full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Claim()
    {
        if (FreeSlots() == 0)
        {
            return Span<byte>.Empty;
        }
        return new Span<byte>(SlotAddress(_producer) + PipeLayout.SlotHeaderSize, DataCapacity);
    }

    /// <summary>Commits the claimed slot with the given length; it becomes visible at the next <see cref="Publish"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit(int length)
    {
        byte* slot = SlotAddress(_producer);
        *(uint*)(slot + PipeLayout.SlotLengthOffset) = (uint)length;
        *(uint*)(slot + PipeLayout.SlotFlagsOffset) = 0;
        _producer++;
    }

    /// <summary>Copies a whole packet into the next slot; false when full or too long.</summary>
    public bool TryWrite(ReadOnlySpan<byte> packet)
    {
        if (packet.Length > DataCapacity)
        {
            return false;
        }
        var slot = Claim();
        if (slot.IsEmpty)
        {
            return false;
        }
        packet.CopyTo(slot);
        Commit(packet.Length);
        return true;
    }

    /// <summary>
    /// Publishes every committed slot with one release store, so the consumer sees their contents first. Returns
    /// false when there was nothing new to publish.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Publish()
    {
        if (_published == _producer)
        {
            return false;
        }
        Volatile.Write(ref *(uint*)(_ring + PipeLayout.ProducerIndexOffset), _producer);
        _published = _producer;
        return true;
    }

    /// <summary>
    /// After a publish: true if the consumer asked to be woken. Clears the request; the caller then rings the doorbell.
    /// The full fence pairs with the consumer's fence between setting the flag and re-checking the ring (Dekker),
    /// so either the consumer sees our index or we see its flag.
    /// </summary>
    public bool TakeWakeupRequest()
    {
        Interlocked.MemoryBarrier();
        ref uint flag = ref *(uint*)(_ring + PipeLayout.NeedsWakeupOffset);
        if (Volatile.Read(ref flag) == 0)
        {
            return false;
        }
        Volatile.Write(ref flag, 0);
        return true;
    }

    /// <summary>
    /// The ring was found full: asks the consumer to wake us (through the socket's wake-up) once half of it is free,
    /// then looks again (Dekker, with <see cref="RingConsumer.TakeRoomRequest"/>). True to wait for that wake-up; false
    /// when half is free already (the request is withdrawn).
    /// </summary>
    public bool AskForRoom()
    {
        ref uint flag = ref *(uint*)(_ring + PipeLayout.WantsRoomOffset);
        Volatile.Write(ref flag, 1);
        Interlocked.MemoryBarrier();
        RefreshConsumer();
        if (_capacity - (_producer - _cachedConsumer) < _capacity / 2)
        {
            return true;
        }
        Volatile.Write(ref flag, 0);
        return false;
    }

    /// <summary>At least half the ring is free (what a program polling for writability waits for).</summary>
    public bool HasRoom()
    {
        RefreshConsumer();
        return _capacity - (_producer - _cachedConsumer) >= _capacity / 2;
    }

    private void RefreshConsumer()
    {
        uint consumer = Volatile.Read(ref *(uint*)(_ring + PipeLayout.ConsumerIndexOffset));
        // The consumer can be neither ahead of us nor more than a ring behind; anything else is corruption.
        if (_producer - consumer > _capacity)
        {
            CorruptConsumerIndex++;
            return;
        }
        _cachedConsumer = consumer;
    }

    private byte* SlotAddress(uint index) => _slots + (long)(index & _mask) * _slotSize;
}
