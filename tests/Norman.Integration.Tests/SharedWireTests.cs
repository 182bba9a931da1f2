using System.Net;
using Norman.Client;
using Norman.Daemon;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Integration.Tests;

/// <summary>Two daemons on one machine as two hosts on one virtual wire, without root.</summary>
public sealed class SharedWireTests : IAsyncLifetime
{
    private TwoHosts _hosts = null!;
    private NormanDaemon _left = null!;
    private NormanDaemon _right = null!;

    public Task InitializeAsync()
    {
        _hosts = new TwoHosts();
        (_left, _right) = (_hosts.Left, _hosts.Right);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _hosts.DisposeAsync();

    [Fact]
    public void Applications_on_two_daemons_exchange_datagrams_across_the_shared_wire()
    {
        Assert.True(((SharedWirePort)_left.Engine.Port).IsSideA);
        Assert.False(((SharedWirePort)_right.Engine.Port).IsSideA);
        using var server = new NormanUdpSocket(_hosts.RightSocket);
        server.Bind(6000);
        using var client = new NormanUdpSocket(_hosts.LeftSocket);
        client.Connect(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 6000));

        var buffer = new byte[NormanUdpSocket.MaxPayload];
        for (int i = 0; i < 100; i++)
        {
            var question = BitConverter.GetBytes(i);
            client.Send(question);
            int length = server.Receive(buffer, out var from, TimeSpan.FromSeconds(10));
            Assert.Equal(question, buffer[..length]);
            Assert.Equal(IPAddress.Parse("198.18.0.1"), from.Address);
            server.SendTo(buffer.AsSpan(0, length), from);
            length = client.Receive(buffer, out var back, TimeSpan.FromSeconds(10));
            Assert.Equal(question, buffer[..length]);
            Assert.Equal(6000, back.Port);
        }
        Assert.True(_left.Engine.Counters.ArpRequestsSent >= 1, "the left host never asked who has 198.18.0.2");
        Assert.Equal(0, _left.Engine.Counters.TotalDrops());
        Assert.Equal(0, _right.Engine.Counters.TotalDrops());
    }

    /// <summary>
    /// A datagram that crosses the wire to a sleeping dataplane wakes it through its FIFO, rung by the other side (the
    /// default dataplane sleeps when idle): each side is let fall asleep before the frame for it leaves, and each wakes
    /// by the port, not by a timer.
    /// </summary>
    [Fact]
    public void A_sleeping_dataplane_is_woken_by_the_other_side_of_the_wire()
    {
        using var server = new NormanUdpSocket(_hosts.RightSocket);
        server.Bind(6001);
        using var client = new NormanUdpSocket(_hosts.LeftSocket);
        client.Connect(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 6001));
        var buffer = new byte[64];
        for (int i = 0; i < 5; i++)
        {
            Assert.True(ApplicationProcessTests.WaitFor(() => _right.Engine.IsAsleep), $"round {i}: the right dataplane never went to sleep");
            long rightWokenByPort = _right.Engine.Counters.WokenByPort;
            client.Send(BitConverter.GetBytes(i));
            int length = server.Receive(buffer, out var from, TimeSpan.FromSeconds(10));
            Assert.True(_right.Engine.Counters.WokenByPort > rightWokenByPort, $"round {i}: the right dataplane was not woken by the wire");

            Assert.True(ApplicationProcessTests.WaitFor(() => _left.Engine.IsAsleep), $"round {i}: the left dataplane never went to sleep");
            long leftWokenByPort = _left.Engine.Counters.WokenByPort;
            server.SendTo(buffer.AsSpan(0, length), from);
            Assert.Equal(BitConverter.GetBytes(i), buffer[..client.Receive(buffer, out _, TimeSpan.FromSeconds(10))]);
            Assert.True(_left.Engine.Counters.WokenByPort > leftWokenByPort, $"round {i}: the left dataplane was not woken by the wire");
        }
    }

    [RootFact]
    public void Two_norman_up_processes_run_as_nobody_share_a_wire_that_carries_an_echo()
    {
        // Root only to become nobody: the daemons and applications themselves run unprivileged.
        string directory = Path.Combine(Path.GetTempPath(), $"norman-nobody-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, (UnixFileMode)0b111_111_111);
        string wire = $"nobody-{Guid.NewGuid():N}";
        string left = Path.Combine(directory, "left.sock"), right = Path.Combine(directory, "right.sock");
        try
        {
            using var leftDaemon = AppProcess.Start("norman", left, "65534", "up", "--socket", left, "--port", $"wire:{wire}", "--address", "198.18.0.1/24");
            Assert.StartsWith("normand: control socket", leftDaemon.ReadLine());
            using var rightDaemon = AppProcess.Start("norman", right, "65534", "up", "--socket", right, "--port", $"wire:{wire}", "--address", "198.18.0.2/24");
            Assert.StartsWith("normand: control socket", rightDaemon.ReadLine());
            using var echo = AppProcess.Start("echo-server", right, "65534", "7007");
            Assert.Contains("listening", echo.ReadLine());
            using var requester = AppProcess.Start("norman-testapp", left, "65534", "request", "198.18.0.2", "7007", "50");
            Assert.Equal("replies 50", requester.ReadLine());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
            File.Delete($"/dev/shm/norman-wire-{wire}");
            File.Delete($"/dev/shm/norman-wire-{wire}.wake-a"); // the daemons were killed: their FIFOs stay, as the wire's file does
            File.Delete($"/dev/shm/norman-wire-{wire}.wake-b");
        }
    }

    [Fact]
    public async Task A_third_daemon_is_refused_the_wire_and_a_departed_sides_place_is_free_again()
    {
        var third = Assert.Throws<InvalidOperationException>(() => NormanDaemon.Start(_hosts.Options("third", "198.18.0.3/24"), NullLog.Instance));
        Assert.Contains("two", third.Message);

        await _hosts.Right.DisposeAsync();
        _hosts.Right = NormanDaemon.Start(_hosts.Options("again", "198.18.0.2/24"), NullLog.Instance);
        Assert.False(((SharedWirePort)_hosts.Right.Engine.Port).IsSideA);
    }
}
