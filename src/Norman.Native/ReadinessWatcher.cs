using Norman.Core.Shm;

namespace Norman.Native;

/// <summary>
/// One thread a process, started with the first UDP socket whose readiness a program watches: it waits in one epoll
/// on those sockets' wake-up descriptors (which the daemon signals when a datagram arrives at a socket that asked)
/// and marks each woken socket readable. UDP needs it because nothing else in the process sees a datagram arrive;
/// a TCP socket's protocol thread marks its own.
/// </summary>
internal static unsafe class ReadinessWatcher
{
    private static readonly object Gate = new();
    private static readonly Dictionary<ulong, NativeSocket> Watched = [];
    private static int _epoll = -1;
    private static ulong _nextKey;

    /// <summary>Watches <paramref name="descriptor"/> for <paramref name="socket"/>; returns the key to stop with.</summary>
    public static ulong Watch(NativeSocket socket, int descriptor)
    {
        lock (Gate)
        {
            if (_epoll < 0)
            {
                _epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
                if (_epoll < 0)
                {
                    throw new IOException($"epoll_create1 failed: {Libc.ErrorText(Libc.LastError)}.");
                }
                new Thread(Run) { IsBackground = true, Name = "norman readiness" }.Start();
            }
            ulong key = ++_nextKey;
            var registration = new Libc.EpollEvent { Events = Libc.EPOLLIN, Data = key };
            if (Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, descriptor, &registration) != 0)
            {
                throw new IOException($"epoll_ctl failed: {Libc.ErrorText(Libc.LastError)}.");
            }
            Watched[key] = socket;
            return key;
        }
    }

    /// <summary>Stops watching (before the socket's descriptor closes).</summary>
    public static void Unwatch(ulong key, int descriptor)
    {
        lock (Gate)
        {
            Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, descriptor, null);
            Watched.Remove(key);
        }
    }

    private static void Run()
    {
        var events = stackalloc Libc.EpollEvent[64];
        while (true)
        {
            int ready = Libc.EpollWait(_epoll, events, 64, -1);
            for (int i = 0; i < ready; i++)
            {
                NativeSocket? socket;
                lock (Gate)
                {
                    Watched.TryGetValue(events[i].Data, out socket);
                }
                socket?.OnDaemonWakeup();
            }
        }
    }
}
