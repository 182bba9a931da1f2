using Norman.Core.Shm;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// Where the dataplane thread sleeps when there is nothing to do: one epoll over everything that can bring it work.
/// The port's descriptors (a frame arrived), every socket's doorbell (an application published into a TX pipe after
/// the dataplane said, in the pipe's needs-wakeup flag, that it was going to sleep; edge-triggered, and never read, see
/// <see cref="Doorbell"/>), and the control plane's nudge (a command is queued). Only the dataplane thread sleeps here;
/// <see cref="Nudge"/> is for any thread.
/// </summary>
public sealed unsafe class Sleeper : IDisposable
{
    private const ulong ControlToken = ulong.MaxValue;
    private const ulong PortToken = ulong.MaxValue - 1;
    private const int MaxEvents = 64;

    private readonly int _epoll;
    private readonly EventFd _control = EventFd.Create();
    private readonly Libc.EpollEvent* _events;
    private bool _noNanosecondTimeouts;

    public Sleeper(IPort port)
    {
        _epoll = Libc.EpollCreate1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0)
        {
            int errno = Libc.LastError;
            _control.Dispose();
            throw new IOException($"epoll_create1 failed: {Libc.ErrorText(errno)} (errno {errno}).");
        }
        _events = (Libc.EpollEvent*)System.Runtime.InteropServices.NativeMemory.Alloc(MaxEvents, (nuint)sizeof(Libc.EpollEvent));
        Add(_control.Fd, ControlToken);
        foreach (int fd in port.WakeDescriptors)
        {
            Add(fd, PortToken);
        }
    }

    /// <summary>The dataplane thread is in epoll now (read racily: for `norman stats` and tests).</summary>
    public bool IsAsleep { get => Volatile.Read(ref _asleep); private set => Volatile.Write(ref _asleep, value); }
    private bool _asleep;

    /// <summary>When something last woke the dataplane thread from its sleep (a Stopwatch timestamp; a timeout does not count): what wake-up latency is measured against.</summary>
    public long WokenAt => Volatile.Read(ref _wokenAt);
    private long _wokenAt;

    /// <summary>Wakes the dataplane if it sleeps, or makes its next sleep return at once (a command is queued). Any thread.</summary>
    public void Nudge() => _control.Signal();

    /// <summary>Wakes the dataplane when this socket's application rings its doorbell.</summary>
    public void Watch(PipeSocket socket) => Add(socket.Doorbell.Fd, (ulong)socket.Slot, Libc.EPOLLIN | Libc.EPOLLET);

    /// <summary>Stops watching a socket (before it leaves its slot).</summary>
    public void Forget(PipeSocket socket) => Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_DEL, socket.Doorbell.Fd, null);

    /// <summary>
    /// Sleeps until something is ready or <paramref name="timeoutNanoseconds"/> pass; takes the control nudges, and
    /// counts what woke it.
    /// </summary>
    public void Sleep(long timeoutNanoseconds, DataplaneCounters counters)
    {
        IsAsleep = true;
        int ready = Wait(timeoutNanoseconds);
        if (ready > 0)
        {
            Volatile.Write(ref _wokenAt, System.Diagnostics.Stopwatch.GetTimestamp());
        }
        IsAsleep = false;
        counters.Sleeps++;
        if (ready <= 0)
        {
            counters.WokenByTimer++;
            return;
        }
        for (int i = 0; i < ready; i++)
        {
            ulong token = _events[i].Data;
            if (token == ControlToken)
            {
                _control.Drain();
                counters.WokenByControl++;
            }
            else if (token == PortToken)
            {
                counters.WokenByPort++;
            }
            else
            {
                // Edge-triggered, and never read: the application's counter is its own business.
                counters.WokenByApplication++;
            }
        }
    }

    private int Wait(long timeoutNanoseconds)
    {
        if (!_noNanosecondTimeouts)
        {
            var timeout = new Libc.TimeSpec { Seconds = timeoutNanoseconds / 1_000_000_000, Nanoseconds = timeoutNanoseconds % 1_000_000_000 };
            int ready = Libc.EpollPwait2(_epoll, _events, MaxEvents, &timeout, null);
            if (ready >= 0 || Libc.LastError != ENOSYS)
            {
                return ready;
            }
            _noNanosecondTimeouts = true; // a kernel before 5.11: millisecond timeouts, rounded up
        }
        return Libc.EpollWait(_epoll, _events, MaxEvents, (int)Math.Min(int.MaxValue, (timeoutNanoseconds + 999_999) / 1_000_000));
    }

    private const int ENOSYS = 38;

    private void Add(int fd, ulong token, uint events = Libc.EPOLLIN)
    {
        var ev = new Libc.EpollEvent { Events = events, Data = token };
        if (Libc.EpollCtl(_epoll, Libc.EPOLL_CTL_ADD, fd, &ev) != 0)
        {
            int errno = Libc.LastError;
            throw new IOException($"epoll_ctl(ADD) of descriptor {fd} failed: {Libc.ErrorText(errno)} (errno {errno}).");
        }
    }

    public void Dispose()
    {
        Libc.Close(_epoll);
        _control.Dispose();
        System.Runtime.InteropServices.NativeMemory.Free(_events);
    }
}
