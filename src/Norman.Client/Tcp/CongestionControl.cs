namespace Norman.Client.Tcp;

/// <summary>
/// A connection's congestion control: the window, slow start up to the threshold, and RFC 6582's fast recovery (three
/// duplicate acknowledgements shrink the window and start recovery, which lasts until everything outstanding at its
/// start is acknowledged; each further duplicate inflates the window by the segment that left; a partial
/// acknowledgement deflates it). How far the window shrinks on a loss and how it grows in congestion avoidance is the
/// algorithm's: <see cref="NewReno"/> (RFC 5681) or <see cref="Cubic"/> (RFC 9438, the default, as Linux's).
/// </summary>
internal abstract class CongestionControl(int mss)
{
    protected readonly int Mss = mss;

    public static CongestionControl Create(TcpCongestionControl algorithm, int mss) =>
        algorithm == TcpCongestionControl.NewReno ? new NewReno(mss) : new Cubic(mss);

    /// <summary>The name `ss -ti` shows ("cubic", "reno"), and what <see cref="Norman.Core.Pipes.ConnectionTable"/> records.</summary>
    public abstract TcpCongestionControl Algorithm { get; }

    /// <summary>RFC 6928's initial window: ten segments.</summary>
    public long Window { get; protected set; } = 10L * mss;
    public long Threshold { get; protected set; } = long.MaxValue;
    public bool InRecovery { get; private set; }
    /// <summary>SND.NXT when recovery began: an acknowledgement past it ends recovery.</summary>
    public uint Recover { get; private set; }

    /// <summary>
    /// New data acknowledged outside recovery, at <paramref name="now"/> (Stopwatch ticks), with the smoothed round trip
    /// so far (ticks; 0 before the first sample).
    /// </summary>
    public void OnAcknowledged(int bytes, long now, double roundTripTicks)
    {
        if (Window < Threshold)
        {
            Window += Math.Min(bytes, Mss);
            return;
        }
        GrowInCongestionAvoidance(bytes, now, roundTripTicks);
    }

    protected abstract void GrowInCongestionAvoidance(int bytes, long now, double roundTripTicks);

    /// <summary>A loss: the threshold the window falls to, from what was in flight.</summary>
    protected abstract long ThresholdAfterLoss(long inFlight);

    /// <summary>The third duplicate acknowledgement: shrink, and inflate by the three segments that left the network.</summary>
    public void EnterRecovery(long inFlight, uint sendNext)
    {
        Threshold = Math.Max(ThresholdAfterLoss(inFlight), 2L * Mss);
        Window = Threshold + 3L * Mss;
        InRecovery = true;
        Recover = sendNext;
    }

    /// <summary>Each further duplicate acknowledgement in recovery: one more segment has left the network.</summary>
    public void OnDuplicateInRecovery() => Window += Mss;

    /// <summary>A partial acknowledgement in recovery: deflate by what it acknowledged, plus one segment back (RFC 6582).</summary>
    public void OnPartialAcknowledgement(int bytes) => Window = Math.Max(Mss, Window - bytes + Mss);

    public void ExitRecovery()
    {
        Window = Threshold;
        InRecovery = false;
    }

    /// <summary>The retransmission timer expired: back to one segment and slow start.</summary>
    public void OnTimeout(long inFlight)
    {
        Threshold = Math.Max(ThresholdAfterLoss(inFlight), 2L * Mss);
        Window = Mss;
        InRecovery = false;
    }
}
