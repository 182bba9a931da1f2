namespace Norman.Daemon.Dataplane;

/// <summary>Runs the engine's breaths on a dedicated thread until stopped; the only thread that touches the dataplane.</summary>
public sealed class DataplaneRunner : IDisposable
{
    private readonly Engine _engine;
    private readonly Thread _thread;
    private volatile bool _stopping;

    private readonly int? _cpu;
    private readonly bool _busyPoll;

    /// <summary>With <paramref name="cpu"/>, the dataplane thread is pinned to that CPU; with <paramref name="busyPoll"/> it never sleeps.</summary>
    public DataplaneRunner(Engine engine, int? cpu = null, bool busyPoll = false)
    {
        _engine = engine;
        _cpu = cpu;
        _busyPoll = busyPoll;
        _thread = new Thread(Run) { Name = "norman-dataplane", IsBackground = true, Priority = ThreadPriority.AboveNormal };
    }

    /// <summary>
    /// Bytes the dataplane thread allocated forwarding packets since it started, leaving out what applying control
    /// commands allocated (read after it stops, or racily while it runs). The hot loop's promise is that this stays 0.
    /// </summary>
    public long AllocatedBytes { get; private set; }

    public Exception? Failure { get; private set; }

    /// <summary>False when pinning to the requested CPU failed (the thread then runs wherever the kernel puts it).</summary>
    public bool Pinned { get; private set; }

    public void Start()
    {
        if (!_busyPoll)
        {
            _engine.EnableSleeping();
        }
        _thread.Start();
    }

    private void Run()
    {
        if (_cpu is { } cpu)
        {
            Pinned = CpuAffinity.PinCurrentThread(cpu);
        }
        var idle = new IdleStrategy(_engine, _busyPoll);
        long allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            while (!_stopping)
            {
                idle.Idle(_engine.DoWork());
                AllocatedBytes = GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart - _engine.CommandAllocatedBytes;
            }
        }
        catch (Exception error)
        {
            // A bug, not bad input: bad input is a counted drop. Record it so the daemon can report and stop,
            // and halt the engine so that control calls waiting on a command are not left hanging.
            Failure = error;
            _engine.Halt();
        }
    }

    public void Stop()
    {
        _stopping = true;
        if (_thread.IsAlive)
        {
            _engine.Wake();
            _thread.Join();
        }
        _engine.Halt();
        _engine.DisableSleeping();
    }

    public void Dispose() => Stop();
}
