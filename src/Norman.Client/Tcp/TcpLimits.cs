using System.Diagnostics;

namespace Norman.Client.Tcp;

/// <summary>
/// The bounds the TCP stack holds to against a peer that lies or stalls, each as Linux's sysctl of the same job says
/// (its default in brackets).
/// </summary>
internal static class TcpLimits
{
    /// <summary>The smallest MSS we send by, whatever a SYN says (net.ipv4.tcp_min_snd_mss, 48): an MSS of 1 would cut every byte into a segment of its own.</summary>
    public const int MinimumSendMss = 48;

    /// <summary>Challenge ACKs all the connections of one carrier send a second (net.ipv4.tcp_challenge_ack_limit, 1000).</summary>
    public const int ChallengeAcksPerSecond = 1000;

    /// <summary>
    /// A connection answers a segment outside its window (an ACK, a SYN: not data) at most once in this time
    /// (net.ipv4.tcp_invalid_ratelimit, 500 ms): ten forged segments get one answer, not ten.
    /// </summary>
    public static readonly long OutOfWindowAnswerTicks = Stopwatch.Frequency / 2;

    /// <summary>How long a connection the application has let go of waits in FIN-WAIT-2 for the peer's FIN (net.ipv4.tcp_fin_timeout, 60 s).</summary>
    public static readonly long FinWait2Ticks = Stopwatch.Frequency * 60;

    /// <summary>The longest wait between two zero-window probes (TCP_RTO_MAX, 120 s).</summary>
    public static readonly long MaximumProbeIntervalTicks = Stopwatch.Frequency * 120;

    /// <summary>Zero-window probes in a row the peer may leave unanswered before the connection is given up (net.ipv4.tcp_retries2, 15).</summary>
    public const int MaximumUnansweredProbes = 15;
}
