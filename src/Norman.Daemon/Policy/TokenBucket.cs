using System.Diagnostics;

namespace Norman.Daemon.Policy;

/// <summary>
/// A token bucket for rate limits and log limits: <c>rate</c> tokens a second (a fraction, for a limit per hour), at
/// most <c>capacity</c> saved; it starts full.
/// </summary>
public sealed class TokenBucket(double ratePerSecond, double capacity)
{
    private readonly double _perTick = ratePerSecond / Stopwatch.Frequency;
    private readonly double _burst = Math.Max(1, capacity);
    private double _tokens = Math.Max(1, capacity);
    private long _last;

    /// <summary>Takes <paramref name="cost"/> tokens if there are that many; false (and nothing taken) otherwise.</summary>
    public bool Take(long cost, long now)
    {
        if (_last != 0)
        {
            _tokens = Math.Min(_burst, _tokens + (now - _last) * _perTick);
        }
        _last = now;
        if (_tokens < cost)
        {
            return false;
        }
        _tokens -= cost;
        return true;
    }
}
