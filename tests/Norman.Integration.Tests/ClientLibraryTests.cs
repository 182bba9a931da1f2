using System.Net;
using Norman.Client;
using Norman.Core.Packets;

namespace Norman.Integration.Tests;

/// <summary>NormanUdpSocket in this process against a daemon in this process: the API's promises and its errors.</summary>
public sealed class ClientLibraryTests : DaemonTest
{

    [Fact]
    public void Without_a_daemon_the_error_names_the_path_and_says_what_to_do()
    {
        string path = Path.Combine(Daemon.Directory, "nobody-here.sock");
        var error = Assert.Throws<NormanDaemonUnavailableException>(() => new NormanUdpSocket(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("norman up", error.Message);
    }

    [Fact]
    public async Task A_sleeping_receiver_is_woken_by_the_eventfd_and_gets_the_datagram()
    {
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Bind(5000);
        var buffer = new byte[100];
        var receiver = Task.Run(() =>
        {
            int length = socket.Receive(buffer, out var from, TimeSpan.FromSeconds(20));
            return (length, from);
        });
        // Only once the receiver sleeps (it asked for a wake-up) does the peer send, so the eventfd path is taken.
        Assert.True(ApplicationProcessTests.WaitFor(() => NeedsWakeup(socket)), "the receiver never went to sleep");
        Daemon.Peer.SendUdp(40000, 5000, "wake up"u8);

        var (length, from) = await receiver.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("wake up"u8.ToArray(), buffer[..length]);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 40000), from);
        Assert.True(Daemon.Daemon.Engine.Counters.Wakeups >= 1);
    }

    [Fact]
    public async Task ReceiveAsync_completes_when_a_datagram_arrives()
    {
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Bind(5000);
        var receive = socket.ReceiveAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token).AsTask();
        Assert.True(ApplicationProcessTests.WaitFor(() => NeedsWakeup(socket)));
        Daemon.Peer.SendUdp(40000, 5000, "async"u8);

        var datagram = await receive;
        Assert.Equal("async"u8.ToArray(), datagram.Payload);
        Assert.Equal(40000, datagram.Source.Port);
    }

    [Fact]
    public void A_connected_socket_hears_only_its_remote_and_sends_there()
    {
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Connect(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7000));
        Daemon.Peer.SendUdp(7001, socket.LocalPort, "stranger"u8);
        Daemon.Peer.SendUdp(7000, socket.LocalPort, "friend"u8);
        var buffer = new byte[64];
        int length = socket.Receive(buffer, out var from, TimeSpan.FromSeconds(10));
        Assert.Equal("friend", System.Text.Encoding.ASCII.GetString(buffer, 0, length));
        Assert.Equal(7000, from.Port);

        socket.Send("reply"u8);
        var sent = Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10));
        Assert.Equal((ushort?)7000, sent?.DestinationPort);
        Assert.Equal(DaemonFixture.HostAddress, sent?.Source);
    }

    [Fact]
    public void TypeOfService_marks_what_the_socket_sends_as_IP_TOS_does()
    {
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Bind(0);
        socket.TypeOfService = 46 << 2; // DSCP EF
        socket.SendTo("voice"u8, new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7000));
        Assert.Equal(46, Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10))?.Dscp);
    }

    [Fact]
    public void Port_zero_picks_an_ephemeral_port_and_a_foreign_address_is_refused()
    {
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Bind(0);
        Assert.InRange(socket.LocalPort, 32768, 60999);

        using var other = new NormanUdpSocket(Daemon.SocketPath);
        var error = Assert.Throws<NormanException>(() => other.Bind(5000, IPAddress.Parse("203.0.113.9")));
        Assert.Equal("EADDRNOTAVAIL", error.Code);
    }

    [Fact]
    public async Task When_the_daemon_goes_away_the_next_call_says_so()
    {
        using var socket = new NormanUdpSocket(Daemon.SocketPath);
        socket.Bind(5000);
        await Daemon.Daemon.DisposeAsync();

        var error = Assert.Throws<NormanDaemonUnavailableException>(() => socket.Receive(new byte[10], out _, TimeSpan.FromSeconds(10)));
        Assert.Contains("went away", error.Message);
    }

    private static unsafe bool NeedsWakeup(NormanUdpSocket socket)
    {
        var pipes = typeof(NormanUdpSocket).GetField("_pipes", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(socket)!;
        var region = (global::Norman.Core.Shm.SharedMemory)pipes.GetType().GetProperty("Region")!.GetValue(pipes)!;
        return Volatile.Read(ref *(uint*)(region.Address + global::Norman.Core.Pipes.PipeLayout.NeedsWakeupOffset)) == 1;
    }
}
