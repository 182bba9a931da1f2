using System.Diagnostics;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// What the dataplane thread does after a breath that moved nothing. Adaptive (the default): it keeps breathing for
/// a while, yielding its CPU between breaths, then sleeps in the engine's epoll until the port, an application's
/// doorbell or the control plane wakes it (<see cref="Engine.PrepareToSleep"/>). Yielding rather than spinning,
/// because on a small machine the scheduler often puts the application on the dataplane's CPU (a VM that shows no
/// shared cache gives it no reason not to): a spinning dataplane would make it wait out a time slice for each answer.
/// Where something only time releases is pending (a shaper's tokens, a frame waiting for its next hop), the sleep is
/// brief: 20 µs doubling to 1 ms, as Snabb's engine and Agrona's BackoffIdleStrategy back off, and still cut short by
/// any wake-up. With busy-polling (a core given over to it): spin, then yield, never sleep. Any work resets it.
/// </summary>
public sealed class IdleStrategy
{
    /// <summary>Idle breaths a busy-polling dataplane spins before it starts yielding.</summary>
    public const int SpinBreaths = 2000;
    /// <summary>Idle breaths an adaptive dataplane takes, yielding between them, before it sleeps.</summary>
    public const int YieldBreathsBeforeSleep = 2000;
    public const int MinBriefSleepMicroseconds = 20;
    public const int MaxBriefSleepMicroseconds = 1000;
    /// <summary>The longest sleep, even with every wake-up armed: what nothing signals (conntrack's sweep) runs at least this often.</summary>
    public const int MaxSleepMilliseconds = 100;
    /// <summary>Breaths in a row the engine may answer "not now" before it is made to sleep briefly anyway (work it cannot move).</summary>
    private const int MaxNotNow = 8;

    private readonly Engine _engine;
    private readonly bool _neverSleep;
    private int _idleBreaths;
    private int _notNow;
    private long _briefSleepNanoseconds = MinBriefSleepMicroseconds * 1000L;

    /// <summary>With <paramref name="neverSleep"/>, idle breaths spin and yield but never sleep: a core given over to the dataplane.</summary>
    public IdleStrategy(Engine engine, bool neverSleep = false)
    {
        _engine = engine;
        _neverSleep = neverSleep;
    }

    public void Idle(int workDone)
    {
        if (workDone > 0)
        {
            _idleBreaths = 0;
            _notNow = 0;
            _briefSleepNanoseconds = MinBriefSleepMicroseconds * 1000L;
            return;
        }
        if (_neverSleep)
        {
            if (_idleBreaths++ < SpinBreaths)
            {
                Thread.SpinWait(8);
            }
            else
            {
                Thread.Yield();
            }
            return;
        }
        if (_idleBreaths < YieldBreathsBeforeSleep)
        {
            _idleBreaths++;
            Thread.Yield();
            return;
        }
        var allowance = _engine.PrepareToSleep(Stopwatch.GetTimestamp());
        if (allowance == SleepAllowance.NotNow && ++_notNow < MaxNotNow)
        {
            return;
        }
        _notNow = 0;
        if (allowance == SleepAllowance.UntilWoken)
        {
            _engine.Sleep(MaxSleepMilliseconds * 1_000_000L);
            return;
        }
        _engine.Sleep(_briefSleepNanoseconds);
        _briefSleepNanoseconds = Math.Min(MaxBriefSleepMicroseconds * 1000L, _briefSleepNanoseconds * 2);
    }
}
