using System.Net;
using Norman.Client;

namespace Norman.Integration.Tests;

/// <summary>
/// Sockets that share a port where Linux lets them, as real programs bind them: an IPv4 listener beside an IPv6-only
/// one (Redis, nginx), and iperf3's connected UDP socket beside the one that keeps listening (SO_REUSEADDR). Each
/// datagram still reaches exactly one of them; anything else on a held port is refused.
/// </summary>
public sealed class PortSharingTests : IAsyncLifetime
{
    private DaemonFixture _daemon = null!;

    public Task InitializeAsync()
    {
        _daemon = new DaemonFixture(configure: options => options.Address6 = "fd66::1/64");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _daemon.DisposeAsync();

    [Fact]
    public void An_IPv4_listener_and_an_IPv6_only_one_share_a_port_and_a_dual_stack_one_does_not()
    {
        using var v4 = new NormanTcpListener(new IPEndPoint(IPAddress.Any, 6379), _daemon.SocketPath);
        using var v6 = new NormanTcpListener(new IPEndPoint(IPAddress.IPv6Any, 6379), _daemon.SocketPath, v6Only: true);
        using var both = new NormanTcpListener(new IPEndPoint(IPAddress.IPv6Any, 6380), _daemon.SocketPath);
        Assert.Equal("EADDRINUSE", Assert.Throws<NormanException>(() => new NormanTcpListener(new IPEndPoint(IPAddress.Any, 6380), _daemon.SocketPath)).Code);
        var dualStack = Assert.Throws<NormanException>(() => new NormanTcpListener(new IPEndPoint(IPAddress.IPv6Any, 6379), _daemon.SocketPath));
        Assert.Equal("EADDRINUSE", dualStack.Code);
    }

    [Fact]
    public void A_connected_udp_socket_and_a_listening_one_share_a_port_when_both_ask_and_each_gets_its_own_datagrams()
    {
        using var connected = new NormanUdpSocket(_daemon.SocketPath) { ReuseAddress = true };
        connected.Bind(5201);
        connected.Connect(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 40000));
        using var listening = new NormanUdpSocket(_daemon.SocketPath) { ReuseAddress = true };
        listening.Bind(5201);
        using var rude = new NormanUdpSocket(_daemon.SocketPath);
        Assert.Equal("EADDRINUSE", Assert.Throws<NormanException>(() => rude.Bind(5201)).Code);
        using var twin = new NormanUdpSocket(_daemon.SocketPath) { ReuseAddress = true };
        Assert.Equal("EADDRINUSE", Assert.Throws<NormanException>(() => twin.Bind(5201)).Code); // same address, neither connected: which would get what?

        _daemon.Peer.SendUdp(40001, 5201, "for the listener"u8);
        _daemon.Peer.SendUdp(40000, 5201, "for the connected one"u8);
        var buffer = new byte[64];
        Assert.Equal("for the connected one", System.Text.Encoding.ASCII.GetString(buffer, 0, connected.Receive(buffer, out _, TimeSpan.FromSeconds(10))));
        Assert.Equal("for the listener", System.Text.Encoding.ASCII.GetString(buffer, 0, listening.Receive(buffer, out var from, TimeSpan.FromSeconds(10))));
        Assert.Equal(40001, from.Port);
    }

    [Fact]
    public void A_reuseport_group_shares_a_port_and_each_sender_keeps_to_one_member_while_the_group_stands()
    {
        var group = Enumerable.Range(0, 3).Select(_ => new NormanUdpSocket(_daemon.SocketPath) { ReusePort = true }).ToList();
        try
        {
            group.ForEach(socket => socket.Bind(5300));
            using var rude = new NormanUdpSocket(_daemon.SocketPath);
            Assert.Equal("EADDRINUSE", Assert.Throws<NormanException>(() => rude.Bind(5300)).Code); // it did not ask

            const int Senders = 200;
            var sources = Deliver(group, Senders, rounds: 2);
            Assert.All(sources, received => Assert.InRange(received.Count, 20, Senders)); // spread over all three
            Assert.Equal(Senders, sources.SelectMany(received => received).Distinct().Count());
            Assert.All(sources, received => Assert.All(received.GroupBy(port => port), datagrams => Assert.Equal(2, datagrams.Count())));

            // A member leaves: its senders move to the others, and nothing is lost.
            group[0].Dispose();
            var rest = group.Skip(1).ToList();
            Assert.True(ApplicationProcessTests.WaitFor(() => _daemon.Daemon.Engine.SocketCount == 2)); // the dataplane let it go
            Assert.Equal(Senders, Deliver(rest, Senders, rounds: 1).Sum(received => received.Count));
        }
        finally
        {
            group.ForEach(socket => socket.Dispose());
        }
    }

    /// <summary>Sends <paramref name="rounds"/> datagrams from each of <paramref name="senders"/> source ports to 5300; the source ports each socket received from.</summary>
    private List<List<int>> Deliver(List<NormanUdpSocket> sockets, int senders, int rounds)
    {
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < senders; i++)
            {
                _daemon.Peer.SendUdp((ushort)(41000 + i), 5300, "spread"u8);
            }
        }
        var received = sockets.Select(_ => new List<int>()).ToList();
        var buffer = new byte[64];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (received.Sum(r => r.Count) < senders * rounds && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            for (int s = 0; s < sockets.Count; s++)
            {
                while (sockets[s].TryReceive(buffer, out _, out ushort port) >= 0)
                {
                    received[s].Add(port);
                }
            }
        }
        Assert.Equal(senders * rounds, received.Sum(r => r.Count));
        return received;
    }

    [Fact]
    public void A_port_shared_by_two_sockets_is_free_again_only_when_both_are_closed()
    {
        var v4 = new NormanTcpListener(new IPEndPoint(IPAddress.Any, 7000), _daemon.SocketPath);
        var v6 = new NormanTcpListener(new IPEndPoint(IPAddress.IPv6Any, 7000), _daemon.SocketPath, v6Only: true);
        v4.Dispose();
        Assert.True(ApplicationProcessTests.WaitFor(() => TryListen(7000, IPAddress.Any)), "the IPv4 half never came free");
        Assert.False(TryListen(7000, IPAddress.IPv6Any, v6Only: false)); // the IPv6-only listener still holds its half
        v6.Dispose();
        Assert.True(ApplicationProcessTests.WaitFor(() => TryListen(7000, IPAddress.IPv6Any, v6Only: false)));
    }

    private bool TryListen(int port, IPAddress address, bool v6Only = false)
    {
        try
        {
            new NormanTcpListener(new IPEndPoint(address, port), _daemon.SocketPath, v6Only: v6Only).Dispose();
            return true;
        }
        catch (NormanException error) when (error.Code == "EADDRINUSE")
        {
            return false;
        }
    }
}
