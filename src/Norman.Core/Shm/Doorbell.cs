namespace Norman.Core.Shm;

/// <summary>
/// How an application wakes a sleeping dataplane: an eventfd the daemon creates and passes with the socket. The
/// application rings it (adds one, never blocking) after publishing into its TX pipe when the dataplane said, in the
/// pipe's needs-wakeup flag, that it was going to sleep. The daemon watches it edge-triggered and never reads or writes
/// it, so nothing the application does to the shared file (clear O_NONBLOCK, fill the counter, drain it) can make the
/// daemon block: an application that fills its own doorbell only loses its own wake-ups.
/// </summary>
public sealed unsafe class Doorbell : IDisposable
{
    private int _fd;

    private Doorbell(int fd) => _fd = fd;

    public int Fd => _fd;

    /// <summary>A new doorbell (the daemon's side).</summary>
    public static Doorbell Create() => new(EventFd.CreateDescriptor());

    /// <summary>Takes ownership of a doorbell received from the daemon.</summary>
    public static Doorbell Adopt(int fd) => new(fd);

    /// <summary>Rings the dataplane. A full counter (a doorbell the application filled itself) is ignored.</summary>
    public void Ring() => EventFd.Signal(_fd);

    public void Dispose()
    {
        if (_fd >= 0)
        {
            Libc.Close(_fd);
            _fd = -1;
        }
    }
}
