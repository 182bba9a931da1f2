using Norman.Client;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;
using Xunit.Abstractions;

namespace Norman.Integration.Tests;

/// <summary>Item 5 of the hardening issue: one application's trouble stays its own.</summary>
[Collection(RunsAlone.Name)]
public sealed class IsolationTests(ITestOutputHelper output) : DaemonTest
{
    [Fact]
    public void An_application_that_stops_reading_fills_only_its_own_RX_pipe_and_its_drops_are_counted_to_it()
    {
        using var stalled = new NormanUdpSocket(Daemon.SocketPath);
        stalled.Bind(6000, slotCount: 64);
        using var echo = Daemon.Start("echo-server", "5000");
        echo.ReadLine();

        const int Rounds = 500, FloodPerRound = 10;
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < FloodPerRound; i++)
            {
                Daemon.Peer.SendUdp(40000, 6000, BitConverter.GetBytes(round * FloodPerRound + i));
            }
            Daemon.Peer.SendUdp(40000, 5000, BitConverter.GetBytes(round));
            var reply = Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10));
            Assert.NotNull(reply);
            Assert.Equal(round, BitConverter.ToInt32(reply.Payload));
        }

        var stalledSocket = Daemon.Daemon.Control.Sockets.Snapshot().Single(s => s.LocalPort == 6000);
        var echoSocket = Daemon.Daemon.Control.Sockets.Snapshot().Single(s => s.LocalPort == 5000);
        long expectedDrops = Rounds * FloodPerRound - 64;
        Assert.True(ApplicationProcessTests.WaitFor(() => stalledSocket.Pipe.Counters.Drops(DropReason.RxPipeFull) == expectedDrops),
            $"the stalled socket counted {stalledSocket.Pipe.Counters.Drops(DropReason.RxPipeFull)} drops, not {expectedDrops}");
        Assert.Equal(expectedDrops, Daemon.Daemon.Engine.Counters.Drops(DropReason.RxPipeFull));
        Assert.DoesNotContain(echoSocket.Pipe.Counters.DropSnapshot(), d => d.Value > 0);
        Assert.Equal(64, stalledSocket.RxQueued);

        // What the pipe held is intact and in order when the application reads again.
        var buffer = new byte[8];
        for (int i = 0; i < 64; i++)
        {
            Assert.Equal(4, stalled.Receive(buffer, out _, TimeSpan.FromSeconds(5)));
            Assert.Equal(i, BitConverter.ToInt32(buffer));
        }
        output.WriteLine($"{Rounds * FloodPerRound} datagrams to a reader that stopped: 64 queued, {expectedDrops} dropped and counted to it; " +
            $"{Rounds} echo round trips beside it, none lost");
    }

    [Fact]
    public async Task A_thousand_applications_churning_their_sockets_beside_traffic_lose_none_of_it_and_leak_nothing()
    {
        var baseline = DaemonResources.Measure();
        using var echo = Daemon.Start("echo-server", "5000");
        echo.ReadLine();
        using var churn = Daemon.Start("norman-testapp", "sessions", "1000", "3");
        var done = Task.Run(() => churn.ReadLine(240));
        int exchanged = 0;
        while (!done.IsCompleted || exchanged < 100)
        {
            Daemon.Peer.SendUdp(40000, 5000, BitConverter.GetBytes(exchanged));
            PeerDatagram? reply;
            while ((reply = Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10))) is { SourcePort: not 5000 })
            {
                // The churning sockets' datagrams to the peer's discard port.
            }
            if (reply is null)
            {
                var echoSocket = Daemon.Daemon.Control.Sockets.Snapshot().FirstOrDefault(s => s.LocalPort == 5000);
                Assert.Fail($"echo {exchanged} got no answer in 10 s; echo socket rx {echoSocket?.Pipe.Counters.RxPackets} tx {echoSocket?.Pipe.Counters.TxPackets} " +
                    $"queued rx {echoSocket?.RxQueued} tx {echoSocket?.TxQueued}; sockets {Daemon.Daemon.Control.Sockets.Count}; echo process alive {!echo.Process.HasExited}; " +
                    $"dataplane failure {Daemon.Daemon.DataplaneFailure?.ToString() ?? "none"}; " +
                    $"counters {string.Join(", ", Daemon.Daemon.Engine.Counters.Snapshot().Where(c => c.Value > 0))}");
            }
            Assert.Equal(exchanged, BitConverter.ToInt32(reply.Payload));
            exchanged++;
        }
        Assert.Equal("done 4000", await done);
        Assert.Equal(1001, Daemon.Daemon.Control.Sockets.Count);

        churn.Dispose();
        echo.Dispose();
        Assert.True(ApplicationProcessTests.WaitFor(() => Daemon.Daemon.Control.Sockets.Count == 0 && DaemonResources.Measure() == baseline),
            $"{Daemon.Daemon.Control.Sockets.Count} sockets and {DaemonResources.Measure()} left, against {baseline}");
        output.WriteLine($"1000 applications (control connections) opened and closed 4000 sockets while {exchanged} echo round trips went " +
            "through, none lost; afterwards 0 sockets, memfds, mappings and eventfds back to the baseline");
    }
}
