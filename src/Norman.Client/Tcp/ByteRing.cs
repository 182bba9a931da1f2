namespace Norman.Client.Tcp;

/// <summary>
/// A byte queue in a ring that grows on demand (doubling) up to a limit: a connection that moves little holds
/// little memory, one that moves much gets room for its window. Not thread-safe: its owner locks.
/// </summary>
internal sealed class ByteRing(int limit)
{
    private const int FirstSize = 4096;
    private byte[] _bytes = [];
    private int _head;

    public int Count { get; private set; }
    public int Limit { get; } = limit;
    public int Free => Limit - Count;

    /// <summary>Appends as much of <paramref name="data"/> as fits under the limit; returns how much.</summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        int take = Math.Min(data.Length, Free);
        if (take == 0)
        {
            return 0;
        }
        Reserve(Count + take);
        int tail = (_head + Count) % _bytes.Length;
        int first = Math.Min(take, _bytes.Length - tail);
        data[..first].CopyTo(_bytes.AsSpan(tail));
        data[first..take].CopyTo(_bytes);
        Count += take;
        return take;
    }

    /// <summary>Copies bytes from <paramref name="offset"/> past the head into <paramref name="destination"/>, without taking them.</summary>
    public int Peek(int offset, Span<byte> destination)
    {
        int take = Math.Min(destination.Length, Count - offset);
        if (take <= 0)
        {
            return 0;
        }
        int start = (_head + offset) % _bytes.Length;
        int first = Math.Min(take, _bytes.Length - start);
        _bytes.AsSpan(start, first).CopyTo(destination);
        _bytes.AsSpan(0, take - first).CopyTo(destination[first..]);
        return take;
    }

    /// <summary>Takes <paramref name="count"/> bytes off the head.</summary>
    public void Discard(int count)
    {
        count = Math.Min(count, Count);
        Count -= count;
        _head = Count == 0 ? 0 : (_head + count) % _bytes.Length;
    }

    private void Reserve(int needed)
    {
        if (needed <= _bytes.Length)
        {
            return;
        }
        int size = Math.Max(FirstSize, _bytes.Length);
        while (size < needed)
        {
            size *= 2;
        }
        var grown = new byte[size];
        Peek(0, grown);
        _bytes = grown;
        _head = 0;
    }
}
