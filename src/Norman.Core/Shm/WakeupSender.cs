namespace Norman.Core.Shm;

/// <summary>
/// How the daemon wakes an application asleep on its pipe: an eventfd only the daemon holds, inside an epoll instance
/// (edge-triggered) that the application gets instead. Signalling the eventfd makes the epoll readable, so the
/// application waits with poll or epoll as on any descriptor (<see cref="WakeupReceiver"/>).
/// </summary>
/// <remarks>
/// Not the eventfd itself, on purpose: both holders of an eventfd share one open file, so an application could clear
/// its O_NONBLOCK and fill the counter, and the dataplane's next signal would block it for every application. The
/// application cannot reach this eventfd through the epoll (epoll_ctl names a descriptor of the caller's own), and
/// the daemon adds one per wake-up to a counter that holds 2^64 − 2, so the signal never blocks. Not a pipe or a
/// socketpair either: their wake-ups are "synchronous", which puts the woken thread on the waker's CPU, and the
/// dataplane keeps running there for a while after it signals.
/// </remarks>
public sealed unsafe class WakeupSender : IDisposable
{
    private int _eventFd;
    private int _epoll;

    private WakeupSender(int eventFd, int epoll)
    {
        _eventFd = eventFd;
        _epoll = epoll;
    }

    /// <summary>The descriptor to pass to the application: the epoll instance.</summary>
    public int ApplicationFd => _epoll;

    public static WakeupSender Create()
    {
        int eventFd = EventFd.CreateDescriptor();
        int epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (epoll < 0)
        {
            int errno = Libc.LastError;
            Libc.Close(eventFd);
            throw new IOException($"epoll_create1 failed: {Libc.ErrorText(errno)} (errno {errno}).");
        }
        var ev = new Libc.EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLET };
        if (Libc.EpollCtl(epoll, Libc.EPOLL_CTL_ADD, eventFd, &ev) != 0)
        {
            int errno = Libc.LastError;
            Libc.Close(epoll);
            Libc.Close(eventFd);
            throw new IOException($"epoll_ctl failed: {Libc.ErrorText(errno)} (errno {errno}).");
        }
        return new WakeupSender(eventFd, epoll);
    }

    /// <summary>Wakes the application (never blocks: the eventfd is the daemon's alone, and non-blocking).</summary>
    public void Signal() => EventFd.Signal(_eventFd);

    /// <summary>
    /// Closes the daemon's copy of the epoll once the application has its own: the epoll lives on in the application,
    /// still watching the eventfd, which the daemon keeps and signals.
    /// </summary>
    public void CloseApplicationEnd()
    {
        if (_epoll >= 0)
        {
            Libc.Close(_epoll);
            _epoll = -1;
        }
    }

    public void Dispose()
    {
        CloseApplicationEnd();
        if (_eventFd >= 0)
        {
            Libc.Close(_eventFd);
            _eventFd = -1;
        }
    }
}
