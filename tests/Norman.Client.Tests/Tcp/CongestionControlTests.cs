using System.Diagnostics;
using Norman.Client.Tcp;

namespace Norman.Client.Tests.Tcp;

/// <summary>
/// CUBIC (RFC 9438) and NewReno driven acknowledgement by acknowledgement on a clock of the test's own: how far a loss
/// shrinks the window, and the shape of the growth after it.
/// </summary>
public sealed class CongestionControlTests
{
    private const int Mss = 1000;
    private static readonly long Second = Stopwatch.Frequency;
    private static readonly double RoundTrip = Stopwatch.Frequency / 100.0; // 10 ms

    [Fact]
    public void A_loss_leaves_cubic_seven_tenths_of_its_window_and_newreno_half()
    {
        foreach (var (algorithm, kept) in new[] { (TcpCongestionControl.Cubic, 0.7), (TcpCongestionControl.NewReno, 0.5) })
        {
            var control = Grown(algorithm, segments: 100);
            control.EnterRecovery(control.Window, sendNext: 1);
            control.ExitRecovery();
            Assert.Equal(kept * 100 * Mss, control.Window, tolerance: Mss);
        }
    }

    [Fact]
    public void After_a_loss_cubic_climbs_fast_then_flattens_at_the_old_window_then_probes_beyond_it()
    {
        var cubic = Grown(TcpCongestionControl.Cubic, segments: 200);
        cubic.EnterRecovery(cubic.Window, sendNext: 1);
        cubic.ExitRecovery();
        // A long path (100 ms), where Reno's estimate grows slower than the cubic (on a short one CUBIC follows Reno's,
        // §4.3): a full window acknowledged every round trip, for 12 s of the test's clock.
        double longTrip = Stopwatch.Frequency / 10.0;
        var samples = new List<(double Seconds, double Segments)>();
        long now = Second;
        for (int trip = 0; trip < 120; trip++)
        {
            now += (long)longTrip;
            long window = cubic.Window;
            for (long acked = 0; acked < window; acked += Mss)
            {
                cubic.OnAcknowledged(Mss, now, longTrip);
            }
            samples.Add(((now - Second) / (double)Second, (double)cubic.Window / Mss));
        }
        // K = cbrt(200 · 0.3 / 0.4) ≈ 5.3 s: the old window again about then, not before 4 s.
        double k = Math.Cbrt(200 * (1 - Cubic.Beta) / Cubic.Scale);
        Assert.All(samples.Where(s => s.Seconds < k - 1.3), s => Assert.True(s.Segments < 200, $"{s.Segments:F1} segments at {s.Seconds:F2} s"));
        Assert.InRange(samples.First(s => s.Seconds >= k).Segments, 190, 210);
        // Concave before K (the first second gains more than the second before K), convex after it.
        double Gain(double from, double to) => At(samples, to) - At(samples, from);
        Assert.True(Gain(0, 1) > 3 * Gain(k - 1, k), $"first second {Gain(0, 1):F1}, last before K {Gain(k - 1, k):F1}");
        Assert.True(Gain(k + 5, k + 6) > 3 * Gain(k, k + 1), $"a second at K {Gain(k, k + 1):F1}, at K+5 {Gain(k + 5, k + 6):F1}");
        // NewReno from the same loss gains one segment a round trip: 100 + 120 segments in the same 12 s.
        var reno = Grown(TcpCongestionControl.NewReno, segments: 200);
        reno.EnterRecovery(reno.Window, sendNext: 1);
        reno.ExitRecovery();
        now = Second;
        for (int trip = 0; trip < 120; trip++)
        {
            now += (long)longTrip;
            long window = reno.Window;
            for (long acked = 0; acked < window; acked += Mss)
            {
                reno.OnAcknowledged(Mss, now, longTrip);
            }
        }
        Assert.InRange((double)reno.Window / Mss, 200, 225);
        Assert.True(samples[^1].Segments > (double)reno.Window / Mss + 50, $"cubic {samples[^1].Segments:F0}, reno {reno.Window / Mss}");
    }

    [Fact]
    public void Losing_again_below_the_last_maximum_gives_ground_fast_convergence()
    {
        var cubic = (Cubic)Grown(TcpCongestionControl.Cubic, segments: 100);
        cubic.EnterRecovery(cubic.Window, sendNext: 1);
        cubic.ExitRecovery();
        Assert.Equal(100, cubic.MaximumAtLoss, tolerance: 1);
        cubic.EnterRecovery(cubic.Window, sendNext: 2); // at 70 segments, below 100
        Assert.Equal(70 * (1 + Cubic.Beta) / 2, cubic.MaximumAtLoss, tolerance: 1);
    }

    [Fact]
    public void A_timeout_drops_either_to_one_segment_in_slow_start()
    {
        foreach (var algorithm in new[] { TcpCongestionControl.Cubic, TcpCongestionControl.NewReno })
        {
            var control = Grown(algorithm, segments: 50);
            control.OnTimeout(control.Window);
            Assert.Equal(Mss, control.Window);
            control.OnAcknowledged(Mss, 2 * Second, RoundTrip);
            Assert.Equal(2 * Mss, control.Window); // slow start again: a segment per segment acknowledged
        }
    }

    /// <summary>A control grown by slow start to <paramref name="segments"/>, no loss yet.</summary>
    private static CongestionControl Grown(TcpCongestionControl algorithm, int segments)
    {
        var control = CongestionControl.Create(algorithm, Mss);
        while (control.Window < segments * Mss)
        {
            control.OnAcknowledged(Mss, 1, RoundTrip);
        }
        return control;
    }

    private static double At(List<(double Seconds, double Segments)> samples, double seconds) =>
        samples.First(s => s.Seconds >= seconds).Segments;
}

/// <summary>The socket's choice reaches its connections and what `norman ss -ti` reads of them.</summary>
public sealed class CongestionControlChoiceTests
{
    [Theory]
    [InlineData(TcpCongestionControl.Cubic, 1, "cubic")]
    [InlineData(TcpCongestionControl.NewReno, 2, "reno")]
    public void A_connection_uses_and_reports_its_socket_s_congestion_control(TcpCongestionControl algorithm, byte number, string name)
    {
        var peer = new ScriptedPeer { CongestionControl = algorithm };
        peer.Establish();
        Assert.Equal(number, peer.Connection.Report().Features & 0x0F);
        Assert.Equal(name, Norman.Core.Pipes.ConnectionTable.CongestionControlName(number));
        Assert.Contains($" {name} cwnd ", peer.Connection.Describe());
    }
}
