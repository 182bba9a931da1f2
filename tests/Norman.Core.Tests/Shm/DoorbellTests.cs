using Norman.Core.Shm;

namespace Norman.Core.Tests.Shm;

/// <summary>The two wake-up paths between the daemon and an application, and what an application can do to them.</summary>
public sealed unsafe class DoorbellTests
{
    private const int F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0x800;

    [Fact]
    public void A_wakeup_makes_the_application_descriptor_readable_until_it_is_taken()
    {
        using var sender = WakeupSender.Create();
        using var receiver = WakeupReceiver.Adopt(Dup(sender.ApplicationFd));
        Assert.False(receiver.Wait(0));
        sender.Signal();
        sender.Signal();
        Assert.True(receiver.Wait(1000));
        Assert.False(receiver.Wait(0));
        sender.Signal();
        Assert.True(receiver.Wait(1000));
    }

    [Fact]
    public void Signalling_never_blocks_whatever_the_application_does_to_its_descriptor()
    {
        using var sender = WakeupSender.Create();
        using var receiver = WakeupReceiver.Adopt(Dup(sender.ApplicationFd));
        // It turns blocking on, tries to fill a counter (an epoll takes no writes) and never takes a wake-up.
        Assert.Equal(0, Libc.Fcntl(receiver.Fd, F_SETFL, Libc.Fcntl(receiver.Fd, F_GETFL, 0) & ~O_NONBLOCK));
        ulong full = 0xffff_ffff_ffff_fffe;
        Assert.True(Libc.Write(receiver.Fd, &full, sizeof(ulong)) < 0);
        for (int i = 0; i < 100_000; i++)
        {
            sender.Signal();
        }
        Assert.True(receiver.Wait(0));
    }

    [Fact]
    public void A_doorbell_the_application_fills_only_stops_its_own_rings()
    {
        using var daemon = Doorbell.Create();
        using var application = Doorbell.Adopt(Dup(daemon.Fd));
        ulong full = 0xffff_ffff_ffff_fffe;
        Assert.Equal(sizeof(ulong), (int)Libc.Write(application.Fd, &full, sizeof(ulong)));
        application.Ring(); // full and non-blocking: refused, and the call returns
        var poll = new Libc.PollFd { Fd = daemon.Fd, Events = Libc.POLLIN };
        Assert.Equal(1, Libc.Poll(&poll, 1, 0)); // still readable: the daemon watches it edge-triggered and never reads it
    }

    /// <summary>A second descriptor for the same file, as SCM_RIGHTS gives the application.</summary>
    private static int Dup(int fd)
    {
        const int F_DUPFD_CLOEXEC = 1030;
        int copy = Libc.Fcntl(fd, F_DUPFD_CLOEXEC, 0);
        Assert.True(copy >= 0);
        return copy;
    }
}
