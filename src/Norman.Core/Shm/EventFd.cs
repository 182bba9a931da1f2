namespace Norman.Core.Shm;

/// <summary>
/// A non-blocking eventfd, for wake-ups inside one process (a thread waking the dataplane or a TCP endpoint's loop).
/// Never shared with another process: both holders of an eventfd share one open file, and one that clears its
/// O_NONBLOCK and fills the counter makes the other's next signal block (the daemon wakes an application through a
/// <see cref="WakeupSender"/>, and is rung through a <see cref="Doorbell"/> it never reads or writes).
/// </summary>
public sealed unsafe class EventFd : IDisposable
{
    private int _fd;

    private EventFd(int fd) => _fd = fd;

    public int Fd => _fd;

    public static EventFd Create() => new(CreateDescriptor());

    /// <summary>A new non-blocking, close-on-exec eventfd descriptor.</summary>
    public static int CreateDescriptor()
    {
        int fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (fd < 0)
        {
            int errno = Libc.LastError;
            throw new IOException($"eventfd failed: {Libc.ErrorText(errno)} (errno {errno}).");
        }
        return fd;
    }

    /// <summary>Adds one to the counter; a full counter (never in practice) is ignored: the waiter is awake anyway.</summary>
    public void Signal() => Signal(_fd);

    /// <summary>Adds one to an eventfd's counter (non-blocking: a full counter is left as it is).</summary>
    internal static void Signal(int fd)
    {
        ulong one = 1;
        Libc.Write(fd, &one, sizeof(ulong));
    }

    /// <summary>Takes a signal without waiting (one read; nothing when there was none).</summary>
    public void Drain()
    {
        ulong value;
        Libc.Read(_fd, &value, sizeof(ulong));
    }

    /// <summary>Waits until signalled or the timeout passes; consumes the signal. Returns true if it was signalled.</summary>
    public bool Wait(int timeoutMilliseconds)
    {
        var poll = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
        int ready = Libc.Poll(&poll, 1, timeoutMilliseconds);
        if (ready <= 0)
        {
            return false;
        }
        ulong value;
        return Libc.Read(_fd, &value, sizeof(ulong)) == sizeof(ulong);
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
