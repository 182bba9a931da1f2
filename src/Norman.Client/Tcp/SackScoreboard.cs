namespace Norman.Client.Tcp;

/// <summary>
/// What the peer's SACK blocks say it holds above SND.UNA (RFC 6675's scoreboard): merged ranges, pruned as the
/// cumulative acknowledgement passes them. A block is believed only inside (SND.UNA, SND.MAX]: one outside is a
/// stale or forged claim and is ignored. Bounded: at most <see cref="MaxRanges"/> ranges (the highest are dropped
/// first, as a sender may renege on nothing it did not keep).
/// </summary>
internal sealed class SackScoreboard
{
    public const int MaxRanges = 32;
    private readonly List<(uint Left, uint Right)> _ranges = new(MaxRanges);

    public int Count => _ranges.Count;

    /// <summary>The highest byte the peer said it holds, plus one (SND.UNA when it said nothing).</summary>
    public uint HighestSacked(uint sendUnacknowledged) => _ranges.Count == 0 ? sendUnacknowledged : _ranges[^1].Right;

    public void Add(uint left, uint right, uint sendUnacknowledged, uint sendMax)
    {
        if (!TcpSequence.Before(left, right) || !TcpSequence.After(left, sendUnacknowledged) || TcpSequence.After(right, sendMax))
        {
            return;
        }
        int at = 0;
        while (at < _ranges.Count && TcpSequence.Before(_ranges[at].Right, left))
        {
            at++;
        }
        // Merge with every range it touches or overlaps, from `at` on.
        while (at < _ranges.Count && TcpSequence.AtOrBefore(_ranges[at].Left, right))
        {
            if (TcpSequence.Before(_ranges[at].Left, left))
            {
                left = _ranges[at].Left;
            }
            if (TcpSequence.After(_ranges[at].Right, right))
            {
                right = _ranges[at].Right;
            }
            _ranges.RemoveAt(at);
        }
        _ranges.Insert(at, (left, right));
        if (_ranges.Count > MaxRanges)
        {
            _ranges.RemoveAt(_ranges.Count - 1);
        }
    }

    /// <summary>Forgets what the cumulative acknowledgement has passed.</summary>
    public void Prune(uint sendUnacknowledged)
    {
        while (_ranges.Count > 0 && TcpSequence.AtOrBefore(_ranges[0].Right, sendUnacknowledged))
        {
            _ranges.RemoveAt(0);
        }
        if (_ranges.Count > 0 && TcpSequence.Before(_ranges[0].Left, sendUnacknowledged))
        {
            _ranges[0] = (sendUnacknowledged, _ranges[0].Right);
        }
    }

    public void Clear() => _ranges.Clear();

    /// <summary>
    /// The first hole at or after <paramref name="from"/> and below the highest SACKed byte (RFC 6675's NextSeg, rule 1:
    /// what lies below a SACKed byte and is not SACKed is taken for lost), at most <paramref name="mss"/> bytes long.
    /// </summary>
    public bool NextHole(uint from, int mss, out uint start, out int length)
    {
        start = from;
        length = 0;
        foreach (var (left, right) in _ranges)
        {
            if (TcpSequence.AtOrAfter(start, right))
            {
                continue; // this range lies wholly before where we look
            }
            if (TcpSequence.Before(start, left))
            {
                length = (int)Math.Min(left - start, (uint)mss);
                return true;
            }
            start = right; // inside a SACKed range: the hole, if any, begins after it
        }
        return false;
    }
}
