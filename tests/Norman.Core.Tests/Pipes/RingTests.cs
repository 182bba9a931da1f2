using System.Runtime.InteropServices;
using Norman.Core.Pipes;

namespace Norman.Core.Tests.Pipes;

public sealed unsafe class RingTests : IDisposable
{
    private const int Slots = 64;
    private const int SlotSize = 256;
    private readonly byte* _memory;

    public RingTests()
    {
        _memory = (byte*)NativeMemory.AlignedAlloc((nuint)PipeLayout.RingBytes(Slots, SlotSize), 128);
        new Span<byte>(_memory, (int)PipeLayout.RingBytes(Slots, SlotSize)).Clear();
        RingInitializer.Initialize(_memory, Slots, SlotSize);
    }

    public void Dispose() => NativeMemory.AlignedFree(_memory);

    [Fact]
    public void Nothing_is_visible_to_the_consumer_until_the_batch_is_published()
    {
        var producer = new RingProducer(_memory, Slots, SlotSize);
        var consumer = new RingConsumer(_memory, Slots, SlotSize);
        Assert.True(producer.TryWrite([1, 2, 3]));
        Assert.True(producer.TryWrite([4]));
        Assert.Equal(0, consumer.Available());

        producer.Publish();

        Assert.Equal(2, consumer.Available());
        Assert.Equal(new byte[] { 1, 2, 3 }, consumer.Peek().ToArray());
        consumer.Advance();
        Assert.Equal(new byte[] { 4 }, consumer.Peek().ToArray());
    }

    [Fact]
    public void A_producer_that_found_the_ring_full_is_woken_once_half_of_it_is_free_and_only_then()
    {
        var producer = new RingProducer(_memory, Slots, SlotSize);
        var consumer = new RingConsumer(_memory, Slots, SlotSize);
        while (producer.TryWrite([7]))
        {
        }
        producer.Publish();
        Assert.True(producer.AskForRoom()); // full: wait for the wake-up
        Assert.False(producer.HasRoom());

        Assert.Equal(Slots, consumer.Available());
        for (int i = 0; i < Slots / 2 - 1; i++)
        {
            consumer.Advance();
        }
        consumer.Publish();
        Assert.False(consumer.TakeRoomRequest()); // one short of half: not yet

        consumer.Advance();
        consumer.Publish();
        Assert.True(consumer.TakeRoomRequest()); // half free: wake the producer, once
        Assert.False(consumer.TakeRoomRequest());
        Assert.True(producer.HasRoom());
        Assert.False(producer.AskForRoom()); // room already: the request is withdrawn at once
        Assert.False(consumer.TakeRoomRequest());
    }

    [Fact]
    public void A_full_ring_refuses_until_the_consumer_publishes_what_it_read()
    {
        var producer = new RingProducer(_memory, Slots, SlotSize);
        var consumer = new RingConsumer(_memory, Slots, SlotSize);
        for (int i = 0; i < Slots; i++)
        {
            Assert.True(producer.TryWrite([(byte)i]));
        }
        Assert.False(producer.TryWrite([0xFF]));
        producer.Publish();
        Assert.Equal(Slots, consumer.Available());
        consumer.Advance();
        Assert.False(producer.TryWrite([0xFF]));
        consumer.Publish();
        Assert.True(producer.TryWrite([0xFF]));
    }

    [Fact]
    public void Packets_cross_threads_in_order_through_many_wraps()
    {
        var producer = new RingProducer(_memory, Slots, SlotSize);
        var consumer = new RingConsumer(_memory, Slots, SlotSize);
        const int Count = 500_000;
        var writer = new Thread(() =>
        {
            for (int sent = 0; sent < Count;)
            {
                var slot = producer.Claim();
                if (slot.IsEmpty)
                {
                    producer.Publish();
                    Thread.SpinWait(10);
                    continue;
                }
                BitConverter.TryWriteBytes(slot, sent);
                slot[4..(4 + sent % 100)].Fill((byte)sent);
                producer.Commit(4 + sent % 100);
                if (++sent % 8 == 0)
                {
                    producer.Publish();
                }
            }
            producer.Publish();
        });
        writer.IsBackground = true;
        writer.Start();
        int expected = 0;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (expected < Count && DateTime.UtcNow < deadline)
        {
            int available = consumer.Available();
            for (int i = 0; i < available; i++, expected++)
            {
                var packet = consumer.Peek();
                Assert.Equal(expected, BitConverter.ToInt32(packet));
                Assert.Equal(4 + expected % 100, packet.Length);
                Assert.True(packet[4..].IndexOfAnyExcept((byte)expected) < 0);
                consumer.Advance();
            }
            consumer.Publish();
        }
        Assert.True(writer.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(Count, expected);
    }

    [Fact]
    public void A_producer_index_beyond_the_ring_is_counted_and_not_followed()
    {
        var consumer = new RingConsumer(_memory, Slots, SlotSize);
        *(uint*)(_memory + PipeLayout.ProducerIndexOffset) = 0xDEADBEEF;

        Assert.Equal(0, consumer.Available());
        Assert.Equal(1, consumer.CorruptProducerIndex);
    }

    [Fact]
    public void A_producer_that_overwrote_the_consumer_index_and_posted_behind_it_is_shown_the_real_one()
    {
        var producer = new RingProducer(_memory, Slots, SlotSize);
        var consumer = new RingConsumer(_memory, Slots, SlotSize);
        producer.TryWrite([1]);
        producer.TryWrite([2]);
        producer.Publish();
        Assert.Equal(2, consumer.Available());
        consumer.Advance();
        consumer.Advance();
        consumer.Publish();
        *(uint*)(_memory + PipeLayout.ConsumerIndexOffset) = 1;   // the application "restores" a stale copy
        *(uint*)(_memory + PipeLayout.ProducerIndexOffset) = 1;   // and posts behind the consumer

        Assert.Equal(0, consumer.Available());
        Assert.Equal(1, consumer.CorruptProducerIndex);
        Assert.Equal(2u, *(uint*)(_memory + PipeLayout.ConsumerIndexOffset));
    }

    [Fact]
    public void A_slot_length_larger_than_the_slot_is_counted_and_yields_nothing()
    {
        var producer = new RingProducer(_memory, Slots, SlotSize);
        var consumer = new RingConsumer(_memory, Slots, SlotSize);
        producer.TryWrite([1]);
        producer.Publish();
        *(uint*)(_memory + PipeLayout.SlotsOffset + PipeLayout.SlotLengthOffset) = uint.MaxValue;

        Assert.Equal(1, consumer.Available());
        Assert.True(consumer.Peek().IsEmpty);
        Assert.Equal(1, consumer.CorruptSlotLength);
    }

    [Fact]
    public void A_consumer_index_ahead_of_the_producer_makes_the_ring_look_full_not_empty()
    {
        var producer = new RingProducer(_memory, Slots, SlotSize);
        for (int i = 0; i < Slots; i++)
        {
            producer.TryWrite([1]);
        }
        producer.Publish();
        *(uint*)(_memory + PipeLayout.ConsumerIndexOffset) = 12345;

        Assert.False(producer.TryWrite([2]));
        Assert.Equal(1, producer.CorruptConsumerIndex);
    }

    [Fact]
    public void A_sleeping_consumer_is_asked_for_by_the_next_publish_and_only_once()
    {
        var producer = new RingProducer(_memory, Slots, SlotSize);
        var consumer = new RingConsumer(_memory, Slots, SlotSize);
        Assert.False(producer.TakeWakeupRequest());
        Assert.True(consumer.PrepareToSleep());

        producer.TryWrite([1]);
        producer.Publish();

        Assert.True(producer.TakeWakeupRequest());
        Assert.False(producer.TakeWakeupRequest());
        Assert.False(consumer.PrepareToSleep()); // data is there: do not sleep
    }
}
