namespace Norman.Core.Shm;

/// <summary>
/// The application's side of a <see cref="WakeupSender"/>: an epoll descriptor that becomes readable when the daemon
/// signals. Waiting takes the signal (an epoll_wait with no timeout harvests the edge), so the descriptor is quiet again.
/// </summary>
public sealed unsafe class WakeupReceiver : IDisposable
{
    private int _fd;

    private WakeupReceiver(int fd) => _fd = fd;

    public int Fd => _fd;

    /// <summary>Takes ownership of the descriptor received from the daemon.</summary>
    public static WakeupReceiver Adopt(int fd) => new(fd);

    /// <summary>Waits until signalled or the timeout passes; takes the signal. Returns true if it was signalled.</summary>
    public bool Wait(int timeoutMilliseconds)
    {
        var poll = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
        return Libc.Poll(&poll, 1, timeoutMilliseconds) > 0 && Take();
    }

    /// <summary>
    /// Waits until signalled or <paramref name="local"/> is (a thread of this process), or the timeout passes; takes
    /// what woke it.
    /// </summary>
    public void Wait(EventFd local, int timeoutMilliseconds)
    {
        var polls = stackalloc Libc.PollFd[2];
        polls[0] = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
        polls[1] = new Libc.PollFd { Fd = local.Fd, Events = Libc.POLLIN };
        if (Libc.Poll(polls, 2, timeoutMilliseconds) <= 0)
        {
            return;
        }
        if (polls[0].ReturnedEvents != 0)
        {
            Take();
        }
        if (polls[1].ReturnedEvents != 0)
        {
            local.Wait(0);
        }
    }

    /// <summary>Takes a signal that arrived, if one did, without waiting.</summary>
    public bool Take()
    {
        Libc.EpollEvent ev;
        return Libc.EpollWait(_fd, &ev, 1, 0) > 0;
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            Libc.Close(_fd);
            _fd = -1;
        }
    }
}
