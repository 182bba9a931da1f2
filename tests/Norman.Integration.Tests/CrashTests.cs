using Xunit.Abstractions;

namespace Norman.Integration.Tests;

/// <summary>Item 3 of the hardening issue: applications that die at any point leave nothing in the daemon.</summary>
[Collection(RunsAlone.Name)]
public sealed class CrashTests(ITestOutputHelper output) : DaemonTest
{
    private const int Kills = 25;

    [Fact]
    public void Applications_killed_at_any_point_of_bind_send_and_close_leave_no_socket_port_memory_or_eventfd()
    {
        var baseline = DaemonResources.Measure();
        var random = new Random(8);
        long cycles = 0;
        for (int kill = 0; kill < Kills; kill++)
        {
            // Killed after a random number of whole cycles, so the kill lands wherever that cycle's successor is:
            // in its bind, its sends, its close or between them.
            using var victim = Daemon.Start("norman-testapp", "churn");
            int after = random.Next(1, 6);
            for (int line = 0; line < after; line++)
            {
                Assert.StartsWith("cycle ", victim.ReadLine());
            }
            victim.KillHard();
            cycles += after;
            // At most the baseline: this process also holds what earlier tests' client endpoints still finish with (a TCP
            // endpoint lingers through its connections' FIN-WAIT-2 and TIME-WAIT), and that may go meanwhile.
            Assert.True(ApplicationProcessTests.WaitFor(() => Daemon.Daemon.Control.Sockets.Count == 0 && DaemonResources.Measure().AtMost(baseline)),
                $"after kill {kill + 1}: {Daemon.Daemon.Control.Sockets.Count} sockets, {DaemonResources.Measure()} against {baseline}");
        }

        output.WriteLine($"{Kills} applications killed with SIGKILL mid-cycle (after {cycles} whole cycles of bind, 100 sends, close); " +
            $"left behind: 0 sockets, resources {DaemonResources.Measure()} = baseline {baseline}");

        // Every port is free again: a bind of each ephemeral port the victims may have held would fail otherwise.
        using var successor = new Norman.Client.NormanUdpSocket(Daemon.SocketPath);
        successor.Bind(0);
        Assert.Null(Daemon.Daemon.DataplaneFailure);
    }
}
