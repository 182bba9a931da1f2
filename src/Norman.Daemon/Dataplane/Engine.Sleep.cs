using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// The engine's sleep: when breaths keep finding nothing, the runner asks <see cref="PrepareToSleep"/> whether it may
/// sleep, which arms every wake-up first (each user's ready map's asleep flag, the needs-wakeup flag of each TX pipe
/// without a ready bit, the port's), and then sleeps in <see cref="Sleep"/> until one fires. The flags cost a busy
/// dataplane nothing: an application looks at the flag after publishing and makes a system call only when the
/// dataplane asked for one, as AF_XDP's need_wakeup does. Arming costs a flag a user, not a flag a socket.
/// </summary>
public sealed partial class Engine
{
    private Sleeper? _sleeper;

    /// <summary>Lets the engine sleep (the runner does, unless busy-polling): an epoll over the port and the sockets.</summary>
    public void EnableSleeping()
    {
        var sleeper = new Sleeper(_port);
        lock (_postGate)
        {
            // Sockets added before now are watched too; the lock keeps out commands applied at once by a halted engine.
            for (int i = 0; i < _sockets.Count; i++)
            {
                sleeper.Watch(_sockets.Active(i));
            }
            _sleeper = sleeper;
        }
    }

    /// <summary>The dataplane thread sleeps now, waiting for a wake-up (read racily).</summary>
    public bool IsAsleep => _sleeper?.IsAsleep ?? false;

    /// <summary>When something last woke the dataplane thread from its sleep (a Stopwatch timestamp; 0 if it never slept).</summary>
    public long WokenAt => _sleeper?.WokenAt ?? 0;

    /// <summary>Wakes the dataplane thread if it sleeps (it is being stopped). Any thread.</summary>
    public void Wake() => _sleeper?.Nudge();

    /// <summary>Stops sleeping and lets go of the epoll (after the dataplane thread has stopped).</summary>
    public void DisableSleeping()
    {
        Sleeper? sleeper;
        lock (_postGate)
        {
            sleeper = _sleeper;
            _sleeper = null;
        }
        sleeper?.Dispose();
    }

    /// <summary>
    /// Arms the wake-ups and says how long the dataplane may sleep. Not while commands, closes or listings are under
    /// way, host replies wait to leave, or the port has work; briefly while a frame waits for its next hop or a TX pipe
    /// holds packets that QoS or the line rate held back (time releases those, and nothing signals time).
    /// </summary>
    public SleepAllowance PrepareToSleep(long now)
    {
        if (_sleeper is null || !_commands.IsEmpty || _closing.Count > 0 || _listings.Count > 0 || _replies.Outbox.Count > 0
            || _publishedPolicy is { } policy && !ReferenceEquals(policy, _policy)
            || _publishedQos is { } qos && !ReferenceEquals(qos, _qos))
        {
            return SleepAllowance.NotNow;
        }
        var allowance = _port.PrepareToSleep(now);
        if (allowance == SleepAllowance.NotNow)
        {
            return allowance;
        }
        if (_neighbour.Waiting > 0 || _scheduler.HasBusyPipes)
        {
            allowance = SleepAllowance.Briefly; // a pipe QoS or the line held back: time releases it, nothing signals
        }
        for (int i = 0; i < _sockets.Count && _sockets.Unmarked > 0; i++)
        {
            var socket = _sockets.Active(i);
            if (socket.Ready is null && !socket.Tx.PrepareToSleep())
            {
                allowance = SleepAllowance.Briefly;
            }
        }
        bool marked = false;
        for (int m = 0; m < _sockets.ReadyMapCount; m++)
        {
            var ready = _sockets.ReadyMap(m);
            marked |= ready.Map.Sleep(ready.WordsInUse);
        }
        if (marked)
        {
            // An application published since the last breath took marks: take them, awake.
            WakeReadyMaps();
            return SleepAllowance.NotNow;
        }
        return allowance;
    }

    private void WakeReadyMaps()
    {
        for (int m = 0; m < _sockets.ReadyMapCount; m++)
        {
            _sockets.ReadyMap(m).Map.Wake();
        }
    }

    /// <summary>
    /// Sleeps until the port, an application or the control plane wakes the dataplane, or the timeout passes; then
    /// withdraws every pipe's request to be woken, so that applications make no system call while it is awake.
    /// </summary>
    public void Sleep(long timeoutNanoseconds)
    {
        if (_sleeper is not { } sleeper)
        {
            return;
        }
        sleeper.Sleep(timeoutNanoseconds, Counters);
        WakeReadyMaps();
        for (int i = 0; i < _sockets.Count && _sockets.Unmarked > 0; i++)
        {
            _sockets.Active(i).Tx.CancelSleep();
        }
    }
}
