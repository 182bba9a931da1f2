using System.Collections.Frozen;

namespace Norman.Daemon.Policy;

/// <summary>
/// A set of numbers (IPv4 addresses, ports, protocols, types) made of single values and intervals, frozen for the
/// dataplane: single values in a hash set (one lookup), intervals merged and sorted (a binary search). What a named
/// set or an anonymous one (<c>{ 53, 1000-2000 }</c>, <c>{ 10.0.0.0/8, 192.0.2.7 }</c>) compiles to.
/// </summary>
public sealed class IntervalSet
{
    private readonly FrozenSet<uint> _values;
    private readonly uint[] _starts;
    private readonly uint[] _ends;

    public IntervalSet(IEnumerable<(uint Start, uint End)> elements)
    {
        var values = new HashSet<uint>();
        var intervals = new List<(uint Start, uint End)>();
        foreach (var (start, end) in elements)
        {
            if (start == end)
            {
                values.Add(start);
            }
            else
            {
                intervals.Add((start, end));
            }
        }
        intervals.Sort();
        var merged = new List<(uint Start, uint End)>();
        foreach (var interval in intervals)
        {
            if (merged.Count > 0 && (ulong)interval.Start <= (ulong)merged[^1].End + 1)
            {
                merged[^1] = (merged[^1].Start, Math.Max(merged[^1].End, interval.End));
            }
            else
            {
                merged.Add(interval);
            }
        }
        _values = values.ToFrozenSet();
        _starts = merged.Select(m => m.Start).ToArray();
        _ends = merged.Select(m => m.End).ToArray();
    }

    public bool Contains(uint value)
    {
        if (_values.Contains(value))
        {
            return true;
        }
        // The last interval that starts at or before the value.
        int index = Array.BinarySearch(_starts, value);
        if (index < 0)
        {
            index = ~index - 1;
        }
        return index >= 0 && value <= _ends[index];
    }
}
