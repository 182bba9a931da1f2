using System.Net.Sockets;
using Norman.Core.Shm;

namespace Norman.Core.Tests.Shm;

public sealed unsafe class SharedMemoryTests
{
    [Fact]
    public void A_memfd_passed_over_a_unix_socket_maps_the_same_memory()
    {
        using var region = SharedMemory.Create("norman:test", 8192);
        region.Address[100] = 42;
        var (left, right) = SocketPair();
        using (left)
        using (right)
        {
            Assert.Equal(5, FdPassing.TrySend((int)left.Handle, "grant"u8, [region.Fd]));
            var fds = new List<int>();
            var buffer = new byte[16];
            int got = FdPassing.Receive((int)right.Handle, buffer, fds);

            Assert.Equal("grant"u8.ToArray(), buffer[..got]);
            Assert.Single(fds);
            using var mapped = SharedMemory.Map(fds[0], 8192);
            Assert.Equal(42, mapped.Address[100]);
            mapped.Address[200] = 7;
            Assert.Equal(7, region.Address[200]);
        }
    }

    [Fact]
    public void A_memfd_is_sealed_so_its_receiver_cannot_shrink_it_under_the_daemon()
    {
        using var region = SharedMemory.Create("norman:test", 8192);
        Assert.NotEqual(0, Libc.Ftruncate(region.Fd, 0));
        Assert.NotEqual(0, Libc.Ftruncate(region.Fd, 1 << 20));
    }

    [Fact]
    public void An_eventfd_wait_returns_when_signalled_and_times_out_otherwise()
    {
        using var wakeup = EventFd.Create();
        Assert.False(wakeup.Wait(0));
        wakeup.Signal();
        Assert.True(wakeup.Wait(1000));
        Assert.False(wakeup.Wait(0));
    }

    private static (Socket, Socket) SocketPair()
    {
        string path = Path.Combine(Path.GetTempPath(), $"norman-test-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(path));
        var server = listener.Accept();
        File.Delete(path);
        return (client, server);
    }
}
