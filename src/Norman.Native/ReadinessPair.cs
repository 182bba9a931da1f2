using Norman.Core.Shm;

namespace Norman.Native;

/// <summary>
/// The descriptor a program polls for a Norman socket: readable exactly while the socket is, and writable exactly while
/// it is, for poll, select and epoll alike (level- and edge-triggered). It is one end of a Unix stream socketpair; the
/// library keeps the other. Readable: the library's end has written a byte to it. Not writable: its own end has written
/// a plug of bytes the library's end has not read, which holds its small send buffer over the quarter the kernel allows;
/// reading the plug makes it writable, and that one change is the EPOLLOUT edge. An eventfd (before) is always
/// writable, so POLLOUT said nothing and an edge had to be made by a signal and a read: two edges for one event.
/// </summary>
/// <remarks>
/// Each change is one non-blocking system call on one end; none wakes the other end's waiters spuriously (a drain
/// frees the library end's buffer, a plug fills it). The program sees a socket (fstat: S_IFSOCK), as it would on Linux.
/// </remarks>
internal sealed unsafe class ReadinessPair : IDisposable
{
    /// <summary>Bytes of a plug: over a quarter of the smallest send buffer (4,608 bytes), with room to spare.</summary>
    private const int PlugBytes = 2048;
    private const int SO_SNDBUF = 7;
    private static readonly byte[] Plug = new byte[PlugBytes];

    private int _polled;
    private int _kept;

    private ReadinessPair(int polled, int kept)
    {
        _polled = polled;
        _kept = kept;
    }

    /// <summary>The end the program polls: not readable, writable.</summary>
    public int Fd => _polled;

    public static ReadinessPair Create()
    {
        int* pair = stackalloc int[2];
        if (Libc.SocketPair(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0, pair) != 0)
        {
            int errno = Libc.LastError;
            throw new IOException($"socketpair failed: {Libc.ErrorText(errno)} (errno {errno}).");
        }
        int smallest = 1; // the kernel raises it to its minimum
        Libc.SetSockOpt(pair[0], Libc.SOL_SOCKET, SO_SNDBUF, &smallest, sizeof(int));
        return new ReadinessPair(pair[0], pair[1]);
    }

    /// <summary>Readable from now (a byte waits on the polled end; more bytes while one waits change nothing).</summary>
    public void MarkReadable()
    {
        byte one = 1;
        Libc.Send(_kept, &one, 1, Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL);
    }

    /// <summary>Not readable from now: the polled end's waiting bytes are taken.</summary>
    public void MarkUnreadable()
    {
        byte* bytes = stackalloc byte[256];
        while (Libc.Recv(_polled, bytes, 256, Libc.MSG_DONTWAIT) == 256)
        {
        }
    }

    /// <summary>Not writable from now (a plug already there stays as it is: the polled end's buffer is full).</summary>
    public void MarkUnwritable()
    {
        fixed (byte* plug = Plug)
        {
            Libc.Send(_polled, plug, PlugBytes, Libc.MSG_DONTWAIT | Libc.MSG_NOSIGNAL);
        }
    }

    /// <summary>Writable from now: the plugs are read (two fit in the buffer), which wakes the polled end's EPOLLOUT waiters once.</summary>
    public void MarkWritable()
    {
        byte* bytes = stackalloc byte[4 * PlugBytes];
        while (Libc.Recv(_kept, bytes, 4 * PlugBytes, Libc.MSG_DONTWAIT) == 4 * PlugBytes)
        {
        }
    }

    public void Dispose()
    {
        if (_polled >= 0)
        {
            Libc.Close(_polled);
            Libc.Close(_kept);
            _polled = _kept = -1;
        }
    }
}
