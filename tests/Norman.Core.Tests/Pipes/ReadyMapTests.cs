using System.Runtime.InteropServices;
using Norman.Core.Pipes;

namespace Norman.Core.Tests.Pipes;

public sealed unsafe class ReadyMapTests
{
    [Fact]
    public void A_mark_is_taken_once_with_its_word_and_bits_come_out_lowest_first()
    {
        byte* words = (byte*)NativeMemory.AllocZeroed(ReadyMap.Bytes);
        try
        {
            var map = new ReadyMap(words);
            map.Mark(3);
            map.Mark(64 + 5);
            map.Mark(3); // already marked: nothing changes
            map.Mark(ReadyMap.Bits - 1);
            Assert.True(map.IsMarked(3));

            ulong first = map.Take(0);
            Assert.Equal(1UL << 3, first);
            Assert.Equal(0UL, map.Take(0)); // taken: cleared
            Assert.False(map.IsMarked(3));
            Assert.Equal(1UL << 5, map.Take(1));
            Assert.Equal(1UL << 63, map.Take(ReadyMap.Words - 1));

            ulong bits = (1UL << 9) | (1UL << 2) | (1UL << 40);
            Assert.Equal(2, ReadyMap.NextBit(ref bits));
            Assert.Equal(9, ReadyMap.NextBit(ref bits));
            Assert.Equal(40, ReadyMap.NextBit(ref bits));
            Assert.Equal(0UL, bits);
        }
        finally
        {
            NativeMemory.Free(words);
        }
    }

    [Fact]
    public void Marks_made_while_another_thread_takes_are_each_seen_exactly_once()
    {
        byte* words = (byte*)NativeMemory.AllocZeroed(ReadyMap.Bytes);
        try
        {
            var map = new ReadyMap(words);
            const int Rounds = 20_000;
            var seen = new int[64];
            int marked = 0;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var marker = new Thread(() =>
            {
                for (int round = 0; round < Rounds; round++)
                {
                    // A bit is marked again only once the taker has seen it, as a pipe is published again only after
                    // the dataplane consumed it: every mark must be seen.
                    int bit = round % 64;
                    while (Volatile.Read(ref seen[bit]) != round / 64)
                    {
                        if (clock.Elapsed > TimeSpan.FromSeconds(30))
                        {
                            return; // the taker gave up: so does this thread
                        }
                        Thread.SpinWait(1);
                    }
                    map.Mark(bit);
                    Interlocked.Increment(ref marked);
                }
            });
            marker.Start();
            long taken = 0;
            while (taken < Rounds && clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                ulong bits = map.Take(0);
                while (bits != 0)
                {
                    int bit = ReadyMap.NextBit(ref bits);
                    Volatile.Write(ref seen[bit], seen[bit] + 1);
                    taken++;
                }
            }
            Assert.True(marker.Join(TimeSpan.FromSeconds(30)));
            Assert.Equal(Rounds, taken);
            Assert.Equal(Rounds, marked);
        }
        finally
        {
            NativeMemory.Free(words);
        }
    }
}
