using System.Diagnostics;

namespace Norman.Client.Tcp;

/// <summary>
/// CUBIC (RFC 9438), Linux's default since 2.6.19: a loss shrinks the window to 0.7 of itself, not half; then the window
/// follows a cubic of the time since the loss, W(t) = C·(t − K)³ + W_max, rising fast, flattening out near the window
/// where the loss happened (W_max, reached at K seconds), and probing beyond it slowly, then faster. So a long or fast
/// path regains its window in time independent of its round trip, where Reno's one segment a round trip takes
/// minutes. Where Reno would grow faster (short round trips, small windows) it follows Reno's estimate instead
/// (§4.3). Fast convergence (§4.7) lets a flow that lost again below its last W_max give up bandwidth to newcomers.
/// </summary>
internal sealed class Cubic(int mss) : CongestionControl(mss)
{
    /// <summary>β: the window is multiplied by this on a loss.</summary>
    public const double Beta = 0.7;
    /// <summary>C: the cubic's scale, in segments per second³.</summary>
    public const double Scale = 0.4;
    /// <summary>Reno's increase per round trip for the same average rate with <see cref="Beta"/> (§4.3).</summary>
    private const double RenoFriendlyIncrease = 3 * (1 - Beta) / (1 + Beta);

    /// <summary>The window (segments) when the last loss happened, and the one before, for fast convergence.</summary>
    private double _lastMaximum;
    /// <summary>When the current epoch of congestion avoidance began (ticks; 0: not begun), and its cubic's K and origin.</summary>
    private long _epochStart;
    private double _k;
    private double _origin;
    /// <summary>Reno's window over the same epoch (segments): the floor CUBIC keeps to.</summary>
    private double _renoEstimate;

    public override TcpCongestionControl Algorithm => TcpCongestionControl.Cubic;

    /// <summary>The window (segments) at the last loss, W_max.</summary>
    public double MaximumAtLoss => _lastMaximum;

    protected override void GrowInCongestionAvoidance(int bytes, long now, double roundTripTicks)
    {
        double window = (double)Window / Mss;
        if (_epochStart == 0)
        {
            _epochStart = now;
            if (window < _lastMaximum)
            {
                _k = Math.Cbrt((_lastMaximum - window) / Scale);
                _origin = _lastMaximum;
            }
            else
            {
                _k = 0;
                _origin = window;
            }
            _renoEstimate = window;
        }
        double t = (double)(now - _epochStart) / Stopwatch.Frequency;
        double roundTrip = roundTripTicks / Stopwatch.Frequency;
        double target = Math.Clamp(CubicWindow(t + roundTrip), window, 1.5 * window);
        double ackedSegments = (double)bytes / Mss;
        _renoEstimate += (_renoEstimate >= _lastMaximum ? 1 : RenoFriendlyIncrease) * ackedSegments / window;
        double next = CubicWindow(t) < _renoEstimate
            ? Math.Max(window, _renoEstimate)
            : window + (target - window) * ackedSegments / window;
        Window = Math.Max(Window, (long)(next * Mss));
    }

    private double CubicWindow(double seconds) => Scale * Math.Pow(seconds - _k, 3) + _origin;

    protected override long ThresholdAfterLoss(long inFlight)
    {
        double window = (double)Math.Min(Window, Math.Max(inFlight, Mss)) / Mss;
        // Fast convergence: losing again below the last maximum means another flow is taking its share; make room.
        _lastMaximum = window < _lastMaximum ? window * (1 + Beta) / 2 : window;
        _epochStart = 0;
        return (long)(window * Beta * Mss);
    }
}
