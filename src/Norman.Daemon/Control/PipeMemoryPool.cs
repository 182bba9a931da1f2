using System.Collections.Concurrent;
using Norman.Core.Pipes;

namespace Norman.Daemon.Control;

/// <summary>
/// Sockets' memory made ahead of the binds that will need it: a few <see cref="PipeMemory"/> of the default geometry,
/// UDP and TCP, so that a bind takes one instead of making a memfd, mapping it and initialising its rings while the
/// application waits (about 200 µs of the bind's 700 on the project's machine). A thread-pool item makes the next ones
/// when <see cref="TopUp"/> is called, once the bind's answer is out: made during the bind, on a machine whose other core
/// the dataplane spins on, it took the core from the thread sending the answer. The pool never takes memory back: a closed socket's memory may still be mapped by its
/// application (a hostile one keeps the descriptor), so it goes to no one else; only that connection's own next bind
/// may get it again (<see cref="KeptMemory"/>). A bind of another geometry makes its own.
/// </summary>
public sealed class PipeMemoryPool : IDisposable
{
    private readonly int _slotCount;
    private readonly int _depth;
    private readonly ConcurrentQueue<PipeMemory> _udp = new();
    private readonly ConcurrentQueue<PipeMemory> _tcp = new();
    private readonly object _gate = new();
    private int _refilling;
    private bool _disposed;

    /// <summary>A pool of <paramref name="depth"/> of each kind of <paramref name="slotCount"/>-slot pipes, filled before it returns.</summary>
    public PipeMemoryPool(int slotCount, int depth)
    {
        _slotCount = slotCount;
        _depth = depth;
        try
        {
            Refill();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>What the pool holds when full (its descriptors are the daemon's own, counted at start).</summary>
    public int Depth => _depth;

    /// <summary>Ready now (for tests and listings; racy).</summary>
    public int Ready => _udp.Count + _tcp.Count;

    /// <summary>Binds that found their memory made.</summary>
    public long Hits => Interlocked.Read(ref _hits);
    private long _hits;

    /// <summary>Memory for a socket: a made one when the geometry is the pool's, else made now (which may throw as creation does).</summary>
    public PipeMemory Take(int slotCount, int slotSize, bool tcp)
    {
        if (slotCount == _slotCount && slotSize == PipeLayout.DefaultSlotSize && (tcp ? _tcp : _udp).TryDequeue(out var made))
        {
            Interlocked.Increment(ref _hits);
            return made;
        }
        return PipeMemory.Create(slotCount, slotSize, tcp);
    }

    /// <summary>Makes memory for the pool's next takes on the thread pool, if it is short and not already making some.</summary>
    public void TopUp()
    {
        if (IsShort)
        {
            ScheduleRefill();
        }
    }

    private void ScheduleRefill()
    {
        if (Interlocked.Exchange(ref _refilling, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(_ =>
            {
                try
                {
                    Refill();
                }
                catch (IOException)
                {
                    // Out of descriptors or memory: binds make their own, and say so to their caller if that fails too.
                    Volatile.Write(ref _refilling, 0);
                    return;
                }
                Volatile.Write(ref _refilling, 0);
                if (IsShort)
                {
                    ScheduleRefill(); // a take came between the last look and the flag's reset
                }
            }, null);
        }
    }

    private bool IsShort => !Volatile.Read(ref _disposed) && (_udp.Count < _depth || _tcp.Count < _depth);

    private void Refill()
    {
        while (IsShort)
        {
            bool tcp = _udp.Count >= _depth;
            var memory = PipeMemory.Create(_slotCount, PipeLayout.DefaultSlotSize, tcp);
            lock (_gate)
            {
                if (_disposed)
                {
                    memory.Dispose();
                    return;
                }
                (tcp ? _tcp : _udp).Enqueue(memory);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            while (_udp.TryDequeue(out var memory) || _tcp.TryDequeue(out memory))
            {
                memory.Dispose();
            }
        }
    }
}
