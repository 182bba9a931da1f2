using System.Runtime.CompilerServices;

namespace Norman.Core.Pipes;

/// <summary>
/// The consuming side of a single-producer/single-consumer ring (see <see cref="PipeLayout"/>).
/// Peek at the oldest slot, use it, advance; <see cref="Publish"/> returns a whole batch of slots with one ordered store.
/// Every index and length read from shared memory is checked: an impossible producer index or slot length is
/// reported and counted, never followed.
/// </summary>
public sealed unsafe class RingConsumer
{
    private readonly byte* _ring;
    private readonly byte* _slots;
    private readonly uint _mask;
    private readonly uint _capacity;
    private readonly int _slotSize;
    private uint _consumer;
    private uint _cachedProducer;
    private uint _published;

    /// <summary>
    /// A consumer over a ring; <paramref name="skipStale"/> starts at the producer's current index and publishes
    /// it, discarding what a previous consumer left unread (a shared wire reclaimed after a restart).
    /// </summary>
    public RingConsumer(byte* ring, int slotCount, int slotSize, bool skipStale = false)
        : this(ring, ring + PipeLayout.SlotsOffset, slotCount, slotSize, skipStale)
    {
    }

    /// <summary>A consumer over a ring whose slots lie apart from its header (a socket's: see <see cref="PipeLayout"/>).</summary>
    public RingConsumer(byte* ring, byte* slots, int slotCount, int slotSize, bool skipStale = false)
    {
        _ring = ring;
        _slots = slots;
        _capacity = (uint)slotCount;
        _mask = (uint)slotCount - 1;
        _slotSize = slotSize;
        DataCapacity = PipeLayout.SlotDataCapacity(slotSize);
        if (skipStale)
        {
            _consumer = _published = _cachedProducer = Volatile.Read(ref *(uint*)(ring + PipeLayout.ProducerIndexOffset));
            Volatile.Write(ref *(uint*)(ring + PipeLayout.ConsumerIndexOffset), _consumer);
        }
    }

    public int DataCapacity { get; }

    /// <summary>Slots in the ring: how many packets it holds before the producer must drop.</summary>
    public int SlotCount => (int)_capacity;

    /// <summary>
    /// Times the producer's index was impossible (ahead of us by more than the ring, or behind us); each time our own
    /// index is published again, for a producer that lost it.
    /// </summary>
    public long CorruptProducerIndex { get; private set; }

    /// <summary>Slots whose length was larger than a slot can hold.</summary>
    public long CorruptSlotLength { get; private set; }

    /// <summary>Packets ready to read; refreshes the producer's index (one acquire load) when the cached one is used up.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Available() => Available(out _);

    /// <summary>
    /// Packets ready to read, and whether the producer's index was impossible (then 0 are; counted in
    /// <see cref="CorruptProducerIndex"/>): the reason comes back with the answer, as DPDK's calls return codes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Available(out bool corruptIndex)
    {
        corruptIndex = false;
        uint available = _cachedProducer - _consumer;
        if (available != 0)
        {
            return (int)available;
        }
        uint producer = Volatile.Read(ref *(uint*)(_ring + PipeLayout.ProducerIndexOffset));
        if (producer - _consumer > _capacity)
        {
            // Our index is published again: a producer that overwrote it (the page is the application's) and posted
            // from there finds where we really are, instead of posting behind us for ever.
            Volatile.Write(ref *(uint*)(_ring + PipeLayout.ConsumerIndexOffset), _consumer);
            CorruptProducerIndex++;
            corruptIndex = true;
            return 0;
        }
        _cachedProducer = producer;
        return (int)(producer - _consumer);
    }

    /// <summary>
    /// The packet in the oldest unread slot. The length is read once; a length past the slot is counted, and
    /// the slot comes back as empty (the caller advances past it). Only call when <see cref="Available()"/> &gt; 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Peek() => Peek(out _);

    /// <summary>
    /// As <see cref="Peek()"/>, saying why an empty packet came back: <paramref name="corruptLength"/> when the slot's
    /// length was past the slot (counted in <see cref="CorruptSlotLength"/>); otherwise the slot held no bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Peek(out bool corruptLength)
    {
        byte* slot = _slots + (long)(_consumer & _mask) * _slotSize;
        uint length = Volatile.Read(ref *(uint*)(slot + PipeLayout.SlotLengthOffset));
        corruptLength = length > (uint)DataCapacity;
        if (corruptLength)
        {
            CorruptSlotLength++;
            return ReadOnlySpan<byte>.Empty;
        }
        return new ReadOnlySpan<byte>(slot + PipeLayout.SlotHeaderSize, (int)length);
    }

    /// <summary>
    /// The oldest unread slot's first <paramref name="length"/> bytes of data, its length field not read again: the
    /// length a caller took from <see cref="Peek()"/> (and checked) is the one it copies by, whatever the application
    /// writes into the field meanwhile. <paramref name="length"/> must be at most <see cref="DataCapacity"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> HeadData(int length)
    {
        byte* slot = _slots + (long)(_consumer & _mask) * _slotSize;
        return new ReadOnlySpan<byte>(slot + PipeLayout.SlotHeaderSize, Math.Min(length, DataCapacity));
    }

    /// <summary>Marks the oldest slot read; the producer may reuse it after the next <see cref="Publish"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Advance() => _consumer++;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Publish()
    {
        if (_published == _consumer)
        {
            return;
        }
        Volatile.Write(ref *(uint*)(_ring + PipeLayout.ConsumerIndexOffset), _consumer);
        _published = _consumer;
    }

    /// <summary>
    /// Asks the producer to ring the doorbell at its next publish, then re-checks the ring.
    /// Returns true when it is safe to sleep (still empty); false when data arrived meanwhile (the request is withdrawn).
    /// </summary>
    public bool PrepareToSleep()
    {
        ref uint flag = ref *(uint*)(_ring + PipeLayout.NeedsWakeupOffset);
        Volatile.Write(ref flag, 1);
        Interlocked.MemoryBarrier();
        if (Available() == 0)
        {
            return true;
        }
        Volatile.Write(ref flag, 0);
        return false;
    }

    /// <summary>
    /// After a publish and a full fence (the caller's, one for every ring it published: it pairs with the producer's
    /// between setting its flag and looking again): true when the producer asked for room
    /// (<see cref="RingProducer.AskForRoom"/>) and half the ring is free; clears the request, and the caller wakes the
    /// producer. The producer's index is read afresh (only when it asked): the copy cached here may predate the sends
    /// that filled the ring, and a wake-up without room is an EPOLLOUT that lies.
    /// </summary>
    public bool TakeRoomRequest()
    {
        ref uint flag = ref *(uint*)(_ring + PipeLayout.WantsRoomOffset);
        if (Volatile.Read(ref flag) == 0)
        {
            return false;
        }
        uint waiting = Volatile.Read(ref *(uint*)(_ring + PipeLayout.ProducerIndexOffset)) - _consumer;
        if (waiting > _capacity / 2)
        {
            return false; // not yet (or an impossible index: the producer's own pipe, it waits)
        }
        Volatile.Write(ref flag, 0);
        return true;
    }

    /// <summary>Withdraws a request to be woken (the consumer is awake again and looks at the ring itself).</summary>
    public void CancelSleep() => Volatile.Write(ref *(uint*)(_ring + PipeLayout.NeedsWakeupOffset), 0);
}
