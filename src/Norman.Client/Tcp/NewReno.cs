namespace Norman.Client.Tcp;

/// <summary>
/// Congestion control as RFC 5681 and RFC 6582 (NewReno) have it: slow start up to the threshold, then one segment
/// per round trip; three duplicate acknowledgements halve the window and start fast recovery, which lasts until
/// everything outstanding at its start is acknowledged; a timeout drops the window to one segment.
/// </summary>
internal sealed class NewReno(int mss)
{
    /// <summary>RFC 6928's initial window: ten segments.</summary>
    public long Window { get; private set; } = 10L * mss;
    public long Threshold { get; private set; } = long.MaxValue;
    public bool InRecovery { get; private set; }
    /// <summary>SND.NXT when recovery began: an acknowledgement past it ends recovery.</summary>
    public uint Recover { get; private set; }

    /// <summary>New data acknowledged outside recovery.</summary>
    public void OnAcknowledged(int bytes)
    {
        Window += Window < Threshold ? Math.Min(bytes, mss) : Math.Max(1, (long)mss * mss / Window);
    }

    /// <summary>The third duplicate acknowledgement: halve, and inflate by the three segments that left the network.</summary>
    public void EnterRecovery(long inFlight, uint sendNext)
    {
        Threshold = Math.Max(inFlight / 2, 2L * mss);
        Window = Threshold + 3L * mss;
        InRecovery = true;
        Recover = sendNext;
    }

    /// <summary>Each further duplicate acknowledgement in recovery: one more segment has left the network.</summary>
    public void OnDuplicateInRecovery() => Window += mss;

    /// <summary>A partial acknowledgement in recovery: deflate by what it acknowledged, plus one segment back (RFC 6582).</summary>
    public void OnPartialAcknowledgement(int bytes) => Window = Math.Max(mss, Window - bytes + mss);

    public void ExitRecovery()
    {
        Window = Threshold;
        InRecovery = false;
    }

    /// <summary>The retransmission timer expired: back to one segment and slow start.</summary>
    public void OnTimeout(long inFlight)
    {
        Threshold = Math.Max(inFlight / 2, 2L * mss);
        Window = mss;
        InRecovery = false;
    }
}
