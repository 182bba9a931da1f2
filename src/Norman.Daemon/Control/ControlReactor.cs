using System.Collections.Concurrent;
using Norman.Core.Shm;

namespace Norman.Daemon.Control;

/// <summary>
/// The thread that reads every control connection and answers the quick requests (hello, bind, connect, close) where it read
/// them. A request read by .NET's socket engine woke its epoll thread, which woke a thread-pool thread to handle it:
/// two thread wake-ups before the daemon even looked, most of a bind's round trip on a machine where a wake-up costs
/// 20–150 µs. Here one epoll thread wakes, reads the request and, if its handler finishes at once, sends the answer
/// before it sleeps again. A request whose handler waits (none of the quick ones does now) or may take long (a policy of
/// 10,000 rules, a listing) is handed to the thread pool, and its connection is not watched until its answer is out,
/// so each connection's requests are still handled one at a time, in order (EPOLLONESHOT does that).
/// </summary>
public sealed class ControlReactor : IAsyncDisposable
{
    /// <summary>Requests one connection may have answered per wake-up before the others get their turn.</summary>
    public const int RequestsPerTurn = 32;

    private const ulong StopToken = 0;
    private readonly int _epoll;
    private readonly EventFd _stop = EventFd.Create();
    private readonly ConcurrentDictionary<ulong, ControlSession> _watched = new();
    private readonly Func<ControlSession, Task> _release;
    private readonly ILogSink _log;
    private readonly Thread _thread;
    private readonly List<Task> _pending = new();
    private ulong _nextToken;
    private volatile bool _stopped;

    /// <param name="release">What the end of a connection does (its sockets released, its budgets returned), on the pool.</param>
    /// <param name="log">Where ended connections and failures are told.</param>
    public unsafe ControlReactor(Func<ControlSession, Task> release, ILogSink log)
    {
        _release = release;
        _log = log;
        _epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0)
        {
            int errno = Libc.LastError;
            _stop.Dispose();
            throw new IOException($"Cannot create the control connections' epoll: {Libc.ErrorText(errno)} (errno {errno}).");
        }
        var stop = new Libc.EpollEvent { Events = Libc.EPOLLIN, Data = StopToken };
        Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, _stop.Fd, &stop);
        _thread = new Thread(Run) { IsBackground = true, Name = "norman-control" };
        _thread.Start();
    }

    /// <summary>Starts watching a new connection; if the kernel refuses, the connection ends (its caller sees it closed).</summary>
    public void Add(ControlSession session)
    {
        session.ReactorToken = Interlocked.Increment(ref _nextToken);
        _watched[session.ReactorToken] = session;
        if (_stopped || !Arm(session, Libc.EPOLL_CTL_ADD))
        {
            End(session, _stopped ? null : $"cannot watch it: {Libc.ErrorText(Libc.LastError)}");
        }
    }

    /// <summary>A connection whose request was handed to the pool is watched again once that request's answer is out.</summary>
    public void Resume(ControlSession session)
    {
        if (_stopped || !Arm(session, Libc.EPOLL_CTL_MOD))
        {
            End(session, null);
        }
    }

    /// <summary>Runs a connection's slow request on the pool; the connection stays unwatched until it calls <see cref="Resume"/> or <see cref="End"/>.</summary>
    public void HandOff(Func<Task> work) => Track(Task.Run(work));

    /// <summary>Stops watching a connection and releases what it held, on the pool; <paramref name="why"/> is logged when not null.</summary>
    public unsafe void End(ControlSession session, string? why)
    {
        if (!_watched.TryRemove(session.ReactorToken, out _))
        {
            return;
        }
        Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, session.Fd, null);
        if (why is not null)
        {
            _log.Info($"control connection of {session.Who} ended: {why}");
        }
        Track(Task.Run(() => _release(session)));
    }

    private unsafe bool Arm(ControlSession session, int operation)
    {
        var watch = new Libc.EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLONESHOT, Data = session.ReactorToken };
        return Libc.EpollCtl(_epoll, operation, session.Fd, &watch) == 0;
    }

    private void Track(Task task)
    {
        task = task.ContinueWith(done =>
        {
            if (done.Exception is { } error)
            {
                _log.Warn($"a control request or release failed: {error.InnerException}");
            }
        }, TaskScheduler.Default);
        lock (_pending)
        {
            _pending.RemoveAll(t => t.IsCompleted);
            _pending.Add(task);
        }
    }

    private unsafe void Run()
    {
        var events = stackalloc Libc.EpollEvent[64];
        while (true)
        {
            int count = Libc.EpollWait(_epoll, events, 64, -1);
            if (count < 0)
            {
                int errno = Libc.LastError;
                if (errno == Libc.EINTR)
                {
                    continue;
                }
                _log.Warn($"the control connections' epoll failed: {Libc.ErrorText(errno)} (errno {errno}); no new requests are read");
                return;
            }
            for (int i = 0; i < count; i++)
            {
                if (events[i].Data == StopToken)
                {
                    return;
                }
                if (_watched.TryGetValue(events[i].Data, out var session))
                {
                    Serve(session);
                }
            }
        }
    }

    private void Serve(ControlSession session)
    {
        try
        {
            switch (session.Serve(this))
            {
                case ControlSession.Turn.Watch:
                    Resume(session);
                    break;
                case ControlSession.Turn.Ended:
                    End(session, null);
                    break;
                case ControlSession.Turn.HandedOff:
                    break;
            }
        }
        catch (Exception error) when (error is IOException or InvalidDataException)
        {
            End(session, error.Message);
        }
        catch (Exception error)
        {
            // A defect, not the caller's doing: this connection ends, the others are still served.
            _log.Warn($"serving the control connection of {session.Who} failed: {error}");
            End(session, error.Message);
        }
    }

    /// <summary>Stops reading, ends every connection (their sockets released) and waits for all of it.</summary>
    public async ValueTask DisposeAsync()
    {
        _stopped = true;
        _stop.Signal();
        _thread.Join();
        foreach (var session in _watched.Values)
        {
            End(session, null); // handed-off ones too: the daemon is stopping; their answer, when done, finds them gone
        }
        // A release may still be added by a handed-off request finishing (End is then a no-op), before its own task
        // completes: waiting until nothing is pending waits for every release.
        while (true)
        {
            Task[] pending;
            lock (_pending)
            {
                _pending.RemoveAll(t => t.IsCompleted);
                pending = [.. _pending];
            }
            if (pending.Length == 0)
            {
                break;
            }
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
        Libc.Close(_epoll);
        _stop.Dispose();
    }
}
