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
