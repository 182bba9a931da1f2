using System.Numerics;
using System.Runtime.CompilerServices;

namespace Norman.Core.Pipes;

/// <summary>
/// Where applications say which of their TX pipes they published into: one bit per socket, in memory one user's
/// processes share with the dataplane (a memfd per uid, passed with each bind). An application sets its socket's bit
/// after publishing; the dataplane takes a word at a time (reads it, and swaps it to zero only when it is not), and
/// looks at the pipes whose bits it took. So a busy dataplane finds a new sender among thousands of idle sockets by
/// reading a few words, not thousands of producer indices in thousands of sockets' memory.
/// The map also says when the dataplane sleeps, so that it arms one flag a user before it sleeps, not one a pipe:
/// an application that marks while the flag is set rings its socket's doorbell.
/// <code>
///  ready map (Bytes bytes)
///  0    u32 asleep (0/1)   written by the dataplane: set before it sleeps, cleared when it wakes
///  128  u64 words[Words]   bit b of word w: the socket given bit 64·w + b has published since the dataplane last took it
/// </code>
/// The words are written by every process of one uid: a hostile one can set bits (the dataplane then looks at pipes
/// with nothing in them, at most its uid's) or clear them (its own uid's pipes then wait for the dataplane's slow
/// sweep); it can do nothing to another user's sockets, whose bits live in another map.
/// </summary>
public readonly unsafe struct ReadyMap(byte* words)
{
    /// <summary>128 KiB: a bit for each of a million sockets of one user; pages are backed only as bits are used.</summary>
    public const int Bytes = 128 * 1024;
    public const int AsleepOffset = 0;
    /// <summary>The words start on their own line, away from the flag the dataplane writes at each sleep.</summary>
    public const int WordsOffset = PipeLayout.LineSize;
    public const int Words = (Bytes - WordsOffset) / sizeof(ulong);
    public const int Bits = Words * 64;

    public bool IsMapped => words != null;

    /// <summary>
    /// Says a pipe was published into (the application, after its publish); true when the dataplane sleeps, and the
    /// caller must ring its socket's doorbell. The full fence orders the publish before the look at the bit: were the
    /// bit seen set and skipped, the dataplane's swap that clears it still comes after our index, so it finds the
    /// packets. The bit is written only when it is clear, so a busy sender does not keep taking the line from the
    /// dataplane. The flag is read after the mark (Dekker, with <see cref="Sleep"/>): either the dataplane sees the
    /// mark before it sleeps, or we see it asleep.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Mark(int bit)
    {
        Interlocked.MemoryBarrier();
        ref ulong word = ref Word(bit >> 6);
        ulong mask = 1UL << (bit & 63);
        if ((Volatile.Read(ref word) & mask) == 0)
        {
            Interlocked.Or(ref word, mask);
        }
        return Volatile.Read(ref *(uint*)(words + AsleepOffset)) != 0;
    }

    /// <summary>
    /// The dataplane is about to sleep: sets the flag, then (full fence) says whether any of the first
    /// <paramref name="wordsInUse"/> words holds a mark, which it must take before sleeping.
    /// </summary>
    public bool Sleep(int wordsInUse)
    {
        Volatile.Write(ref *(uint*)(words + AsleepOffset), 1);
        Interlocked.MemoryBarrier();
        for (int w = 0; w < wordsInUse; w++)
        {
            if (Volatile.Read(ref Word(w)) != 0)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The dataplane is awake: applications need not ring.</summary>
    public void Wake() => Volatile.Write(ref *(uint*)(words + AsleepOffset), 0);

    /// <summary>
    /// The bits set in word <paramref name="index"/>, cleared (the dataplane, before it looks at their pipes: a
    /// publish after the swap sets its bit again). A zero word is only read, so idle words stay in the cache unshared.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Take(int index)
    {
        ref ulong word = ref Word(index);
        return Volatile.Read(ref word) == 0 ? 0 : Interlocked.Exchange(ref word, 0);
    }

    /// <summary>Whether a bit is set, without taking it (for tests and listings).</summary>
    public bool IsMarked(int bit) => (Volatile.Read(ref Word(bit >> 6)) & (1UL << (bit & 63))) != 0;

    private ref ulong Word(int index) => ref *(ulong*)(words + WordsOffset + (long)index * sizeof(ulong));

    /// <summary>The lowest bit set in <paramref name="bits"/>, and that bit cleared from it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NextBit(ref ulong bits)
    {
        int bit = BitOperations.TrailingZeroCount(bits);
        bits &= bits - 1;
        return bit;
    }
}
