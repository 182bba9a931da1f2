using System.Diagnostics;

namespace Norman.Client.Tcp;

/// <summary>
/// The retransmission timeout of RFC 6298: smoothed round trip and its variation from samples (never from a
/// retransmitted segment: Karn), RTO = SRTT + 4·RTTVAR, at least 200 ms (Linux's floor; the RFC's 1 s is for
/// the Internet of 2011), doubled on each expiry up to 60 s.
/// </summary>
internal sealed class RoundTripEstimator
{
    public static readonly long MinimumTicks = Stopwatch.Frequency / 5;
    public static readonly long InitialTicks = Stopwatch.Frequency;
    public static readonly long MaximumTicks = Stopwatch.Frequency * 60;

    private double _smoothed;
    private double _variation;
    private bool _sampled;

    public long TimeoutTicks { get; private set; } = InitialTicks;

    /// <summary>The smoothed round trip (SRTT), in ticks; 0 before the first sample.</summary>
    public double SmoothedTicks => _smoothed;

    public void Sample(long roundTripTicks)
    {
        if (!_sampled)
        {
            _smoothed = roundTripTicks;
            _variation = roundTripTicks / 2.0;
            _sampled = true;
        }
        else
        {
            _variation = 0.75 * _variation + 0.25 * Math.Abs(_smoothed - roundTripTicks);
            _smoothed = 0.875 * _smoothed + 0.125 * roundTripTicks;
        }
        TimeoutTicks = Math.Clamp((long)(_smoothed + Math.Max(4 * _variation, Stopwatch.Frequency / 1000.0)), MinimumTicks, MaximumTicks);
    }

    /// <summary>The timer expired: the next timeout is twice as long (RFC 6298 §5.5).</summary>
    public void Backoff() => TimeoutTicks = Math.Min(TimeoutTicks * 2, MaximumTicks);
}
