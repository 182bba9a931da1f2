using System.Diagnostics;

namespace Norman.Client.Tcp;

/// <summary>
/// The challenge ACKs (RFC 5961 §7) all of one carrier's connections may send in a second:
/// <see cref="TcpLimits.ChallengeAcksPerSecond"/>, as Linux's tcp_challenge_ack_limit. Loop thread only.
/// </summary>
internal sealed class ChallengeAckBudget
{
    private int _takenThisSecond;
    private long _secondStart = long.MinValue / 2; // long ago

    public bool Take(long now)
    {
        if (now - _secondStart >= Stopwatch.Frequency)
        {
            _secondStart = now;
            _takenThisSecond = 0;
        }
        return ++_takenThisSecond <= TcpLimits.ChallengeAcksPerSecond;
    }
}
