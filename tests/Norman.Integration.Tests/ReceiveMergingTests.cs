using System.Diagnostics;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Integration.Tests;

/// <summary>
/// An AF_PACKET port turns GRO off on its interface (a packet socket must see the wire's frames, not merged ones) and
/// must put it back: when it stops, and, after a crash that gave it no chance, at the next start's stop.
/// </summary>
public sealed class ReceiveMergingTests : IDisposable
{
    private TestNamespace _space = null!; // made by the test itself: a skipped test (not root) makes none
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"norman-gro-{Guid.NewGuid():N}");

    public ReceiveMergingTests() => Directory.CreateDirectory(_directory);

    public void Dispose()
    {
        _space?.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [NetnsFact]
    public void An_afpacket_port_puts_GRO_back_when_it_stops_and_after_a_SIGKILL_at_the_next_run()
    {
        _space = new TestNamespace("gro");
        _space.Run("ip", "link", "add", "gro0", "type", "veth", "peer", "name", "gro1");
        _space.Run("ip", "link", "set", "gro0", "up");
        _space.Run("ip", "link", "set", "gro1", "up");
        _space.Run("ethtool", "-K", "gro0", "gro", "on");
        Assert.True(GroIsOn(), "the test could not turn GRO on to begin with");

        var daemon = StartDaemon();
        Assert.False(GroIsOn(), "the port did not turn GRO off");
        Stop(daemon, "TERM");
        Assert.True(GroIsOn(), "a clean stop did not put GRO back");

        daemon = StartDaemon();
        Stop(daemon, "KILL");
        Assert.False(GroIsOn()); // nobody put it back: the next run must know it was on
        daemon = StartDaemon();
        Stop(daemon, "TERM");
        Assert.True(GroIsOn(), "after a SIGKILL, the next run's stop did not put GRO back");
        // This namespace's record is gone (another run's, left by a failure, is not this test's to judge).
        Assert.False(File.Exists(Path.Combine(ReceiveMerging.RecordDirectory(root: true), $"gro0@{_space.Run("stat", "-L", "-c", "%i", $"/proc/self/ns/net").Trim()}")));
    }

    private bool GroIsOn() => _space.Run("ethtool", "-k", "gro0").Contains("generic-receive-offload: on", StringComparison.Ordinal);

    private Process StartDaemon()
    {
        var daemon = _space.Start(AppProcess.BesideTests("norman"), "up", "--socket", Path.Combine(_directory, "n.sock"),
            "--port", "afpacket:gro0", "--address", "198.18.9.1/24");
        var banner = daemon.StandardOutput.ReadLineAsync();
        Assert.True(banner.Wait(TimeSpan.FromSeconds(30)) && banner.Result?.Contains("control socket", StringComparison.Ordinal) == true,
            $"the daemon did not start: {(daemon.HasExited ? daemon.StandardError.ReadToEnd() : "(no banner)")}");
        return daemon;
    }

    private static void Stop(Process daemon, string signal)
    {
        Host.Run("kill", "-" + signal, daemon.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(daemon.WaitForExit(TimeSpan.FromSeconds(20)), $"the daemon did not stop on SIG{signal}");
        if (signal == "TERM")
        {
            Assert.True(daemon.ExitCode == 0, $"the daemon's stop failed (exit {daemon.ExitCode}): {daemon.StandardError.ReadToEnd()}");
        }
    }
}
