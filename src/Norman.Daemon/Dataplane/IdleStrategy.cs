using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// What the dataplane thread does after a breath that moved nothing: spin first (kernel-bypass latency), then
/// yield, then sleep for longer and longer up to <see cref="MaxSleepMicroseconds"/>, as Snabb's engine and Agrona's
/// BackoffIdleStrategy do, so an idle daemon does not burn a core on a shared machine. Any work resets it.
/// </summary>
public sealed class IdleStrategy
{
    public const int SpinBreaths = 2000;
    public const int YieldBreaths = 200;
    public const int MinSleepMicroseconds = 20;
    public const int MaxSleepMicroseconds = 1000;

    private readonly bool _neverSleep;
    private int _idleBreaths;

    /// <summary>With <paramref name="neverSleep"/>, idle breaths spin and yield but never sleep: a core given over to the dataplane.</summary>
    public IdleStrategy(bool neverSleep = false) => _neverSleep = neverSleep;
    private int _sleepMicroseconds = MinSleepMicroseconds;

    public void Idle(int workDone)
    {
        if (workDone > 0)
        {
            _idleBreaths = 0;
            _sleepMicroseconds = MinSleepMicroseconds;
            return;
        }
        _idleBreaths++;
        if (_idleBreaths < SpinBreaths)
        {
            Thread.SpinWait(8);
        }
        else if (_idleBreaths < SpinBreaths + YieldBreaths || _neverSleep)
        {
            Thread.Yield();
        }
        else
        {
            Sleep(_sleepMicroseconds);
            _sleepMicroseconds = Math.Min(MaxSleepMicroseconds, _sleepMicroseconds * 2);
        }
    }

    private static void Sleep(int microseconds)
    {
        var request = new Libc.TimeSpec { Seconds = 0, Nanoseconds = microseconds * 1000L };
        Libc.NanoSleep(ref request, IntPtr.Zero);
    }

}
