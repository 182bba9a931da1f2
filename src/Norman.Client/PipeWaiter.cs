using System.Diagnostics;

namespace Norman.Client;

/// <summary>
/// The client's one idle strategy, as Agrona's: after the last piece of work, spin for 50 µs (a packet usually follows
/// within microseconds, and a sleep costs a wake-up), then let the caller sleep on the pipe's eventfd so an idle
/// application burns no CPU. Every waiting loop in the client (blocking and async receive, the TCP protocol thread)
/// uses this one, so they cannot drift apart.
/// </summary>
internal struct PipeWaiter
{
    private static readonly long SpinTicks = Stopwatch.Frequency / 20_000; // 50 µs
    private long _idleSince;

    public PipeWaiter(long now) => _idleSince = now;

    /// <summary>Work was done at <paramref name="now"/>: the spin window starts again.</summary>
    public void Worked(long now) => _idleSince = now;

    /// <summary>
    /// While still inside the spin window, spins a few cycles and returns true (the caller polls again); after it,
    /// returns false and the caller should arm its wake-up and sleep.
    /// </summary>
    public readonly bool Spin(long now)
    {
        if (now - _idleSince >= SpinTicks)
        {
            return false;
        }
        Thread.SpinWait(20);
        return true;
    }
}
