using System.Diagnostics;
using Norman.Client;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Integration.Tests;

/// <summary>
/// The dataplane sleeps when idle and each of its sources of work wakes it: an application's doorbell, a frame from
/// the wire, a control command. What woke it is counted, so each test sees that its source did the waking (a missed
/// wake-up would still be served by the 100 ms timer, and counted as the timer's). And nothing an application does to
/// its end of the doorbell can make the dataplane block.
/// </summary>
public sealed partial class SleepingDataplaneTests : DaemonTest
{
    private Norman.Daemon.Dataplane.Engine Engine => Daemon.Daemon.Engine;

    [Fact]
    public void An_application_publishing_rings_the_sleeping_dataplane_awake()
    {
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Bind(5000);
        Assert.True(WokenBy(() => Engine.Counters.WokenByApplication, () => socket.SendTo("ring"u8, DaemonFixture.PeerAddress, 9000)),
            "no send woke the dataplane through the socket's doorbell");
        Assert.Equal("ring"u8.ToArray(), Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10))?.Payload);
        // Going to sleep and waking, as forwarding, allocates nothing on the dataplane thread (the peer, which runs
        // there too, is told not to keep what it receives: that would be the test's allocation, not Norman's).
        // What the first few sleeps allocate once (the runtime's own first-call work, a few hundred bytes) is let go.
        Daemon.Peer.KeepDatagrams = false;
        void SleepAndWake(int times)
        {
            for (int i = 0; i < times; i++)
            {
                Assert.True(WokenBy(() => Engine.Counters.WokenByApplication, () => socket.SendTo("again"u8, DaemonFixture.PeerAddress, 9000)));
            }
        }
        SleepAndWake(10);
        long before = Daemon.Daemon.DataplaneAllocatedBytes;
        SleepAndWake(20);
        Assert.Equal(before, Daemon.Daemon.DataplaneAllocatedBytes);
    }

    [Fact]
    public void A_thousand_round_trips_each_begun_after_the_dataplane_fell_asleep_lose_nothing()
    {
        Daemon.Peer.EchoOnPort(7);
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Bind(5000);
        var buffer = new byte[64];
        long sleepsBefore = Engine.Counters.Sleeps;
        for (int round = 0; round < 1_000; round++)
        {
            Assert.True(ApplicationProcessTests.WaitFor(() => Engine.IsAsleep), $"round {round}: the dataplane never went to sleep");
            socket.SendTo(BitConverter.GetBytes(round), DaemonFixture.PeerAddress, 7);
            // A blocking receive: the application sleeps too, and the dataplane's wake-up brings the echo.
            int length = socket.Receive(buffer, out _, TimeSpan.FromSeconds(10));
            Assert.Equal((4, round), (length, BitConverter.ToInt32(buffer, 0)));
        }
        Assert.True(Engine.Counters.Sleeps - sleepsBefore >= 1_000);
        Assert.Equal(0, Engine.Counters.TotalDrops());
    }

    [Fact]
    public void A_frame_from_the_wire_wakes_the_sleeping_dataplane()
    {
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Bind(5000);
        Assert.True(WokenBy(() => Engine.Counters.WokenByPort, () => Daemon.Peer.SendUdp(40000, 5000, "wire"u8)),
            "no frame woke the dataplane through the port");
        var buffer = new byte[64];
        int length = socket.Receive(buffer, out _, TimeSpan.FromSeconds(10));
        Assert.Equal("wire"u8.ToArray(), buffer[..length]);
    }

    [Fact]
    public void A_control_command_wakes_the_sleeping_dataplane()
    {
        var sockets = new List<NormanUdpSocket>();
        try
        {
            Assert.True(WokenBy(() => Engine.Counters.WokenByControl, () =>
            {
                var socket = new NormanUdpSocket(Daemon.SocketPath);
                sockets.Add(socket);
                socket.Bind(0); // the bind completes only once the dataplane has applied it
            }), "no bind woke the dataplane through the control plane's nudge");
        }
        finally
        {
            sockets.ForEach(socket => socket.Dispose());
        }
    }

    [Fact]
    public unsafe void An_application_that_blocks_and_fills_its_descriptors_cannot_stall_the_dataplane()
    {
        // The attack an eventfd shared with the application allowed: clear O_NONBLOCK on the shared file, fill the
        // counter, and ask to be woken, so that the dataplane's next signal blocks it for every application. Here it
        // is tried on both descriptors the application holds: its wake-up (an epoll, which takes no writes) and its
        // doorbell (which the daemon never writes).
        using var control = ControlChannel.Connect(Daemon.SocketPath);
        var fds = new List<int>();
        var grant = control.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "udp", Port = 6000 }, fds).Socket!;
        Assert.Equal(4, fds.Count); // memory, wake-up, doorbell, and the user's ready map
        using var readyMap = SharedMemory.Map(fds[3], global::Norman.Core.Pipes.ReadyMap.Bytes);
        using var region = SharedMemory.Map(fds[0], grant.RegionBytes);
        using var wakeup = WakeupReceiver.Adopt(fds[1]);
        using var doorbell = Doorbell.Adopt(fds[2]);
        const int F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0x800;
        ulong full = 0xffff_ffff_ffff_fffe;
        foreach (int fd in new[] { wakeup.Fd, doorbell.Fd })
        {
            Assert.Equal(0, Fcntl(fd, F_SETFL, Fcntl(fd, F_GETFL, 0) & ~O_NONBLOCK));
            Write(fd, &full, sizeof(ulong));
        }
        uint* rxNeedsWakeup = (uint*)(region.Address + global::Norman.Core.Pipes.PipeLayout.RxRingOffset + global::Norman.Core.Pipes.PipeLayout.NeedsWakeupOffset);

        using var honest = new NormanUdpSocket(Daemon.SocketPath);
        honest.Bind(5000);
        var buffer = new byte[64];
        long wakeupsBefore = Engine.Counters.Wakeups;
        const int Rounds = 500; // fewer than the pipe's 1,024 slots, which the hostile application never empties
        for (int round = 0; round < Rounds; round++)
        {
            // Each datagram to the hostile socket asks the dataplane to wake an application that never takes it.
            long before = Engine.Counters.Wakeups;
            Volatile.Write(ref *rxNeedsWakeup, 1);
            Daemon.Peer.SendUdp(40000, 6000, "wake"u8);
            Assert.True(ApplicationProcessTests.WaitFor(() => Engine.Counters.Wakeups > before), $"round {round}: the dataplane stalled");
            if (round % 50 == 0)
            {
                Daemon.Peer.SendUdp(40000, 5000, "still here"u8);
                int length = honest.Receive(buffer, out _, TimeSpan.FromSeconds(10));
                Assert.Equal("still here"u8.ToArray(), buffer[..length]);
            }
        }
        Assert.True(Engine.Counters.Wakeups - wakeupsBefore >= Rounds);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "fcntl")]
    private static extern int Fcntl(int fd, int command, int argument);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "write")]
    private static extern unsafe nint Write(int fd, void* buffer, nuint count);

    /// <summary>
    /// Waits for the dataplane to sleep, does <paramref name="act"/>, and says whether <paramref name="count"/> rose. A
    /// few tries: the dataplane's own timer may wake it between the look and the act, and it then takes the work awake.
    /// </summary>
    private bool WokenBy(Func<long> count, Action act)
    {
        for (int attempt = 0; attempt < 5; attempt++)
        {
            Assert.True(ApplicationProcessTests.WaitFor(() => Engine.IsAsleep), "the idle dataplane never went to sleep");
            long before = count();
            act();
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(2))
            {
                if (count() > before)
                {
                    return true;
                }
                Thread.Yield();
            }
        }
        return false;
    }
}
