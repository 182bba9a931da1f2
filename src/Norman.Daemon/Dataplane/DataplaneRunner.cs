namespace Norman.Daemon.Dataplane;

/// <summary>Runs the engine's breaths on a dedicated thread until stopped; the only thread that touches the dataplane.</summary>
public sealed class DataplaneRunner : IDisposable
{
    private readonly Engine _engine;
    private readonly Thread _thread;
    private volatile bool _stopping;

    public DataplaneRunner(Engine engine)
    {
        _engine = engine;
        _thread = new Thread(Run) { Name = "norman-dataplane", IsBackground = true, Priority = ThreadPriority.AboveNormal };
    }

    /// <summary>Bytes allocated by the dataplane thread since it started (read after it stops, or racily while it runs).</summary>
    public long AllocatedBytes { get; private set; }

    public Exception? Failure { get; private set; }

    public void Start() => _thread.Start();

    private void Run()
    {
        long allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
        var idle = new IdleStrategy();
        try
        {
            while (!_stopping)
            {
                idle.Idle(_engine.DoWork());
                AllocatedBytes = GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart;
            }
        }
        catch (Exception error)
        {
            // A bug, not bad input: bad input is a counted drop. Record it so the daemon can report and stop.
            Failure = error;
        }
    }

    public void Stop()
    {
        _stopping = true;
        if (_thread.IsAlive)
        {
            _thread.Join();
        }
        _engine.Halt();
    }

    public void Dispose() => Stop();
}
