namespace Norman.Client.Tcp;

/// <summary>
/// The threads TCP endpoints run their loops on, parked for the next endpoint when a loop ends. Starting a thread cost
/// about a millisecond on the project's machine (a third of a TCP connect between two Norman hosts); waking a parked one
/// costs a wake-up. At most <see cref="MaxParked"/> wait, each for <see cref="IdleLifetime"/>, then ends.
/// </summary>
internal static class ProtocolThreads
{
    public const int MaxParked = 16;

    /// <summary>How long a parked thread waits for another loop before it ends (shorter in tests).</summary>
    public static TimeSpan IdleLifetime { get; set; } = TimeSpan.FromSeconds(10);

    private static readonly List<Worker> Parked = new();

    /// <summary>Threads parked now, waiting for a loop.</summary>
    public static int ParkedCount
    {
        get
        {
            lock (Parked)
            {
                return Parked.Count;
            }
        }
    }

    /// <summary>Runs <paramref name="loop"/> on a parked thread, or a new one when none waits.</summary>
    public static Loop Start(Action loop, string name)
    {
        var started = new Loop(loop);
        Worker? parked = null;
        lock (Parked)
        {
            if (Parked.Count > 0)
            {
                parked = Parked[^1];
                Parked.RemoveAt(Parked.Count - 1);
            }
        }
        if (parked is null)
        {
            new Worker(started, name);
        }
        else
        {
            parked.Give(started, name);
        }
        return started;
    }

    /// <summary>One loop given to a thread: who runs it, and when it has ended.</summary>
    public sealed class Loop(Action loop)
    {
        private readonly ManualResetEventSlim _ended = new();
        private int _threadId;

        /// <summary>The calling thread is the one running this loop (a loop that ends itself must not wait for itself).</summary>
        public bool IsCurrentThread => Volatile.Read(ref _threadId) == Environment.CurrentManagedThreadId;

        /// <summary>Waits until the loop has returned.</summary>
        public void Join() => _ended.Wait();

        internal void Run()
        {
            Volatile.Write(ref _threadId, Environment.CurrentManagedThreadId);
            try
            {
                loop();
            }
            finally
            {
                Volatile.Write(ref _threadId, 0);
                _ended.Set();
            }
        }
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim _given = new(0, 1);
        private Loop? _loop;
        private string _name;

        public Worker(Loop first, string name)
        {
            _loop = first;
            _name = name;
            new Thread(Serve) { IsBackground = true, Name = name }.Start();
        }

        public void Give(Loop loop, string name)
        {
            _loop = loop;
            _name = name;
            _given.Release();
        }

        private void Serve()
        {
            while (true)
            {
                Thread.CurrentThread.Name = _name; // ps and debuggers show which endpoint it serves now
                Interlocked.Exchange(ref _loop, null)!.Run();
                lock (Parked)
                {
                    if (Parked.Count >= MaxParked)
                    {
                        return;
                    }
                    Parked.Add(this);
                }
                if (_given.Wait(IdleLifetime))
                {
                    continue;
                }
                lock (Parked)
                {
                    if (Parked.Remove(this))
                    {
                        return; // idle for its lifetime: ends
                    }
                }
                _given.Wait(); // taken just as it timed out: its loop is being given
            }
        }
    }
}
