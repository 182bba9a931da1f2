using System.Collections.Concurrent;
using Norman.Core.Shm;

namespace Norman.Client;

/// <summary>
/// Lets async receives sleep without a thread each: one background thread per process waits in epoll on the
/// eventfds of every socket that awaits data, and completes their tasks when the daemon signals.
/// Registrations are one-shot and re-armed per wait.
/// </summary>
internal sealed unsafe class WakeupReactor
{
    private static readonly Lazy<WakeupReactor> Shared = new(() => new WakeupReactor());
    private readonly int _epoll;
    private readonly ConcurrentDictionary<int, TaskCompletionSource> _waiters = new();

    private WakeupReactor()
    {
        _epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0)
        {
            throw new IOException($"epoll_create1 failed: {Libc.ErrorText(Libc.LastError)}");
        }
        new Thread(Run) { IsBackground = true, Name = "norman-wakeups" }.Start();
    }

    public static WakeupReactor Instance => Shared.Value;

    /// <summary>A task that completes when the eventfd becomes readable (the caller then drains it).</summary>
    public Task WaitAsync(int eventFd, CancellationToken cancellation)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiters[eventFd] = waiter;
        var ev = new Libc.EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLONESHOT, Data = (ulong)eventFd };
        if (Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_MOD, eventFd, &ev) != 0 && Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, eventFd, &ev) != 0)
        {
            _waiters.TryRemove(eventFd, out _);
            return Task.FromException(new IOException($"epoll_ctl failed: {Libc.ErrorText(Libc.LastError)}"));
        }
        if (cancellation.CanBeCanceled)
        {
            var registration = cancellation.Register(() =>
            {
                if (_waiters.TryRemove(new KeyValuePair<int, TaskCompletionSource>(eventFd, waiter)))
                {
                    waiter.TrySetCanceled(cancellation);
                }
            });
            waiter.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        }
        return waiter.Task;
    }

    /// <summary>Forgets an eventfd, if the reactor was ever used.</summary>
    public static void ForgetIfStarted(int eventFd)
    {
        if (Shared.IsValueCreated)
        {
            Shared.Value.Forget(eventFd);
        }
    }

    /// <summary>Forgets an eventfd before it is closed (the daemon holds the same file, so epoll would keep it).</summary>
    public void Forget(int eventFd)
    {
        Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, eventFd, null);
        if (_waiters.TryRemove(eventFd, out var waiter))
        {
            waiter.TrySetCanceled();
        }
    }

    private void Run()
    {
        const int MaxEvents = 64;
        var events = stackalloc Libc.EpollEvent[MaxEvents];
        while (true)
        {
            int ready = Libc.EpollWait(_epoll, events, MaxEvents, -1);
            for (int i = 0; i < ready; i++)
            {
                if (_waiters.TryRemove((int)events[i].Data, out var waiter))
                {
                    waiter.TrySetResult();
                }
            }
        }
    }
}
