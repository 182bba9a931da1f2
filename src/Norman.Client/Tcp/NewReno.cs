namespace Norman.Client.Tcp;

/// <summary>RFC 5681's congestion avoidance: one segment more per round trip; a loss halves what was in flight.</summary>
internal sealed class NewReno(int mss) : CongestionControl(mss)
{
    public override TcpCongestionControl Algorithm => TcpCongestionControl.NewReno;

    protected override void GrowInCongestionAvoidance(int bytes, long now, double roundTripTicks) =>
        Window += Math.Max(1, (long)Mss * Mss / Window);

    protected override long ThresholdAfterLoss(long inFlight) => inFlight / 2;
}
