using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Norman.Integration.Tests;

public sealed class TopTests
{
    [Fact]
    public async Task Norman_top_under_tmux_shows_the_applications_with_their_rates_and_quits_on_q()
    {
        await using var daemon = new DaemonFixture(lineRate: 100_000_000);
        using var echo = daemon.Start("echo-server", "5000");
        echo.ReadLine();
        // The peer sends to the echo server at 100 Mbit/s for as long as the test runs; it echoes every datagram back.
        daemon.Peer.StartFlood(40000, 5000, 64, count: 100_000_000);
        string session = $"norman-top-{Guid.NewGuid():N}"[..20];
        try
        {
            Tmux("new-session", "-d", "-s", session, "-x", "220", "-y", "30",
                $"{AppProcess.BesideTests("norman")} top --socket {daemon.SocketPath} -d 0.3");
            var row = new Regex(@"\d+\s+echo-server\s+udp 0\.0\.0\.0:5000\s+(?<rx>[0-9.]+[kMG]?)\s+\S+\s+(?<tx>[0-9.]+[kMG]?)\s");
            Match? seen = null;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(20))
            {
                var match = row.Match(Tmux("capture-pane", "-p", "-t", session));
                if (match.Success && match.Groups["rx"].Value != "0" && match.Groups["tx"].Value != "0")
                {
                    seen = match;
                    break;
                }
                await Task.Delay(100); // polling the screen until it shows the rates, bounded by the clock above
            }
            Assert.True(seen is not null, $"norman top never showed echo-server with rates both ways:\n{Tmux("capture-pane", "-p", "-t", session)}");

            Tmux("send-keys", "-t", session, "q");
            clock.Restart();
            while (SessionAlive(session) && clock.Elapsed < TimeSpan.FromSeconds(5))
            {
                await Task.Delay(50);
            }
            Assert.False(SessionAlive(session), "norman top did not exit on q");
        }
        finally
        {
            if (SessionAlive(session))
            {
                Tmux("kill-session", "-t", session);
            }
        }
    }

    [Fact]
    public async Task Norman_top_into_a_file_writes_plain_tables_with_every_column_and_ends_after_n()
    {
        await using var daemon = new DaemonFixture();
        using var echo = daemon.Start("echo-server", "5000");
        echo.ReadLine();
        var start = new ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "top", "--socket", daemon.SocketPath, "-n", "3", "-d", "0.1" })
        {
            start.ArgumentList.Add(argument);
        }
        using var top = Process.Start(start)!;
        string output = await top.StandardOutput.ReadToEndAsync();
        await top.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(0, top.ExitCode);
        Assert.DoesNotContain('\u001b', output); // no colours, no cursor moves
        Assert.Equal(3, Regex.Matches(output, @"PID\s+APP\s+SOCKET\s+RX pps\s+RX bit/s\s+TX pps\s+TX bit/s\s+DROPS/s\s+DROPS by reason\s+RECV-Q\s+SEND-Q\s+CLASS").Count);
        Assert.Equal(3, Regex.Matches(output, @"\d+\s+echo-server\s+udp 0\.0\.0\.0:5000").Count);
    }

    [Theory]
    [InlineData("-d", "-1")]
    [InlineData("-n", "-3")]
    public async Task Norman_top_refuses_a_negative_delay_or_count(string option, string value)
    {
        await using var daemon = new DaemonFixture();
        var start = new ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "top", "--socket", daemon.SocketPath, option, value })
        {
            start.ArgumentList.Add(argument);
        }
        using var top = Process.Start(start)!;
        string errors = await top.StandardError.ReadToEndAsync();
        await top.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(2, top.ExitCode);
        Assert.StartsWith("norman top: bad ", errors);
    }

    private static bool SessionAlive(string session)
    {
        using var process = Process.Start(new ProcessStartInfo("tmux", ["has-session", "-t", session]) { RedirectStandardError = true })!;
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0;
    }

    private static string Tmux(params string[] arguments)
    {
        var start = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"tmux {string.Join(' ', arguments)}: {errors}");
        return output;
    }
}
