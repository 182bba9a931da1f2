using System.Diagnostics;

namespace Norman.Daemon.Policy;

/// <summary>A token bucket for rate limits and log limits: <c>rate</c> tokens a second, at most <c>burst</c> saved.</summary>
public sealed class TokenBucket(long ratePerSecond, long burst)
{
    private readonly double _perTick = (double)ratePerSecond / Stopwatch.Frequency;
    private readonly double _burst = Math.Max(1, burst);
    private double _tokens = Math.Max(1, burst);
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
