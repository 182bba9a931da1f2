using Norman.Client;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;
using Microsoft.Win32.SafeHandles;

namespace Norman.Integration.Tests;

/// <summary>
/// A TCP connection inherited across fork, at the control protocol (the interposer's side is NormanRunTests'): a
/// listener's application names a connection it closed after forking with the descriptor it held it by; a child that
/// passes a copy of that descriptor gets it, once the listener's stack (played here by the test) answers the daemon's
/// ask in its header page, with every part of its received bytes; a stranger's descriptor gets nothing.
/// </summary>
public sealed class ClaimConnectionTests
{
    [Fact]
    public async Task A_child_with_the_named_descriptor_gets_the_connection_in_all_its_parts_and_a_stranger_is_refused()
    {
        await using var daemon = new DaemonFixture();
        // Two open files: one stands for the descriptor the parent held the connection by, one for any other.
        using SafeFileHandle heldFile = File.OpenHandle("/dev/null"), strangerFile = File.OpenHandle("/dev/null");
        int held = (int)heldFile.DangerousGetHandle(), stranger = (int)strangerFile.DangerousGetHandle();
        var received = new List<int>();
        try
        {
            using var parent = ControlChannel.Connect(daemon.SocketPath);
            var bound = parent.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "tcp", Port = 0 }, received);
            long listener = bound.Socket!.SocketId;
            using var header = SharedMemory.Map(received[0], bound.Socket.RegionBytes);

            var udp = parent.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "udp", Port = 0 }, received);
            var notListener = Assert.Throws<NormanException>(() => parent.Call(new ControlRequest
            {
                Op = ControlProtocol.Ops.ConnectionHolder, SocketId = udp.Socket!.SocketId, RemoteAddress = "198.18.0.2", RemotePort = 40000,
            }, sentFds: [held]));
            Assert.Contains("not a TCP listener", notListener.Message);
            parent.Call(new ControlRequest
            {
                Op = ControlProtocol.Ops.ConnectionHolder, SocketId = listener, RemoteAddress = "198.18.0.2", RemotePort = 40000,
            }, sentFds: [held]);

            using var child = ControlChannel.Connect(daemon.SocketPath);
            var refused = Assert.Throws<NormanException>(() =>
                child.Call(new ControlRequest { Op = ControlProtocol.Ops.ClaimConnection }, received, sentFds: [stranger]));
            Assert.Contains("no Norman TCP connection", refused.Message);

            var claim = Task.Run(() => child.Call(new ControlRequest { Op = ControlProtocol.Ops.ClaimConnection }, received, sentFds: [held]));
            int asked = await AskedAsync(header);
            unsafe
            {
                byte* page = header.Address;
                Assert.Equal(40000u, *(uint*)(page + PipeLayout.ConnectionWantedPortOffset));
            }
            // The listener's stack answers in two parts, as it does past PartBytes of received bytes.
            var first = new byte[HandedOverConnection.PartBytes];
            var second = new byte[1000];
            new Random(17).NextBytes(first);
            new Random(18).NextBytes(second);
            parent.Call(new ControlRequest
            {
                Op = ControlProtocol.Ops.ConnectionHandOver, SocketId = listener, Sequence = asked, More = true,
                HandedOver = [Connection(first)],
            });
            parent.Call(new ControlRequest
            {
                Op = ControlProtocol.Ops.ConnectionHandOver, SocketId = listener, Sequence = asked,
                HandedOver = [new HandedOverConnection { RemoteAddress = "198.18.0.2", RemotePort = 40000, Received = second }],
            });
            var taken = await claim;
            Assert.Equal(bound.Socket.LocalPort, taken.Socket!.LocalPort);
            Assert.Equal([.. first, .. second], taken.HandedOver!.Single().Received);
            Assert.Equal(1_000_000u, taken.HandedOver!.Single().ReceiveNext);

            // Taken: the named descriptor proves nothing any more.
            var again = Assert.Throws<NormanException>(() =>
                child.Call(new ControlRequest { Op = ControlProtocol.Ops.ClaimConnection }, received, sentFds: [held]));
            Assert.Contains("no Norman TCP connection", again.Message);
        }
        finally
        {
            FdPassing.CloseAll(received);
        }
    }

    private static HandedOverConnection Connection(byte[] received) => new()
    {
        LocalAddress = "198.18.0.1", RemoteAddress = "198.18.0.2", RemotePort = 40000, SendNext = 5000, SendWindow = 65535,
        MaxSendWindow = 65535, SendMss = 1460, ReceiveNext = 1_000_000, AdvertisedEdge = 1_100_000, Received = received,
    };

    /// <summary>The daemon's ask in the listener's header page, as the listener's stack sees it (it looks every turn): its count.</summary>
    private static async Task<int> AskedAsync(SharedMemory header)
    {
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(10);)
        {
            int asked = Asked(header);
            if (asked != 0)
            {
                return asked;
            }
            await Task.Delay(5); // polling shared memory, as the stack's loop does, bounded
        }
        throw new TimeoutException("the daemon never asked the listener's stack for the connection");
    }

    private static unsafe int Asked(SharedMemory header) => Volatile.Read(ref *(int*)(header.Address + PipeLayout.ConnectionWantedOffset));
}
