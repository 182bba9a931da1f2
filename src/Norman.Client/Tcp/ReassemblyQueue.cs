namespace Norman.Client.Tcp;

/// <summary>
/// Segments that arrived ahead of the next expected byte, kept until the gap before them fills (reordering,
/// loss); bounded, as a receiver need not keep what it has no room for.
/// </summary>
internal sealed class ReassemblyQueue
{
    private const int MaxSegments = 256;
    private readonly SortedList<uint, byte[]> _segments = new(new SequenceOrder());

    public int Count => _segments.Count;

    /// <summary>Where the segment kept last starts: RFC 2018 wants the block holding it reported first.</summary>
    private uint _latest;

    /// <summary>Keeps a copy of an out-of-order segment's data (a duplicate start keeps the longer one).</summary>
    public void Add(uint sequence, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || (_segments.Count >= MaxSegments && !_segments.ContainsKey(sequence)))
        {
            return;
        }
        if (_segments.TryGetValue(sequence, out var kept) && kept.Length >= data.Length)
        {
            return;
        }
        _segments[sequence] = data.ToArray();
        _latest = sequence;
    }

    /// <summary>
    /// The kept bytes as SACK blocks (RFC 2018 §4), contiguous segments merged: the block holding the segment kept last
    /// first, then the others from the highest down, at most <paramref name="blocks"/>' length. Returns how many.
    /// </summary>
    public int Blocks(Span<(uint Left, uint Right)> blocks)
    {
        if (_segments.Count == 0 || blocks.IsEmpty)
        {
            return 0;
        }
        // Merge into runs, highest first (at most 256 segments: a stack buffer of runs is not needed, blocks are few).
        Span<(uint Left, uint Right)> runs = stackalloc (uint, uint)[Math.Min(_segments.Count, 64)];
        int count = 0;
        for (int i = _segments.Count - 1; i >= 0 && count < runs.Length; i--)
        {
            uint left = _segments.Keys[i];
            uint right = left + (uint)_segments.Values[i].Length;
            if (count > 0 && TcpSequence.AtOrAfter(right, runs[count - 1].Left))
            {
                runs[count - 1].Left = left; // touches or overlaps the run above it
                if (TcpSequence.After(right, runs[count - 1].Right))
                {
                    runs[count - 1].Right = right;
                }
                continue;
            }
            runs[count++] = (left, right);
        }
        int written = 0;
        int latest = -1;
        for (int r = 0; r < count; r++)
        {
            if (TcpSequence.AtOrAfter(_latest, runs[r].Left) && TcpSequence.Before(_latest, runs[r].Right))
            {
                latest = r;
                blocks[written++] = runs[r];
                break;
            }
        }
        for (int r = 0; r < count && written < blocks.Length; r++)
        {
            if (r != latest)
            {
                blocks[written++] = runs[r];
            }
        }
        return written;
    }

    /// <summary>
    /// Hands every kept byte that now continues at <paramref name="next"/> to <paramref name="deliver"/> (which
    /// returns how much it took) and returns the new next expected sequence number.
    /// </summary>
    public uint Drain(uint next, Func<ReadOnlyMemory<byte>, int> deliver)
    {
        while (_segments.Count > 0)
        {
            uint start = _segments.Keys[0];
            var data = _segments.Values[0];
            if (TcpSequence.After(start, next))
            {
                break;
            }
            _segments.RemoveAt(0);
            uint end = start + (uint)data.Length;
            if (TcpSequence.AtOrBefore(end, next))
            {
                continue; // entirely old
            }
            int skip = (int)(next - start);
            int taken = deliver(data.AsMemory(skip));
            next += (uint)taken;
            if (taken < data.Length - skip)
            {
                break; // no room for the rest: the sender will send it again
            }
        }
        return next;
    }

    private sealed class SequenceOrder : IComparer<uint>
    {
        public int Compare(uint x, uint y) => x == y ? 0 : TcpSequence.Before(x, y) ? -1 : 1;
    }
}
