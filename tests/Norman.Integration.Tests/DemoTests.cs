using System.Diagnostics;

namespace Norman.Integration.Tests;

public sealed class DemoTests
{
    [Fact]
    public async Task The_demo_runs_to_its_end_alone_in_under_a_minute_and_leaves_nothing_behind()
    {
        var clock = Stopwatch.StartNew();
        var start = new ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("demo");
        start.ArgumentList.Add("--seconds");
        start.ArgumentList.Add("2");
        using var demo = Process.Start(start)!;
        var output = demo.StandardOutput.ReadToEndAsync();
        var errors = demo.StandardError.ReadToEndAsync();
        await demo.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);

        Assert.True(demo.ExitCode == 0, $"demo exited {demo.ExitCode}: {await errors}\n{await output}");
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1));
        string text = await output;
        Assert.Matches(@"udp\s+UNCONN.*users:\(\(""kvdb"",pid=\d+\)\)", text);
        Assert.Matches(@"users:\(\(""bobapp"",pid=\d+\)\)", text);
        Assert.Contains("0 Norman memfds left open", text);
        Assert.Matches(@"users:\(\(""rogue-httpd"",pid=\d+\)\)", text);
        Assert.Contains("the request was refused", text);
        Assert.Matches(@"app rogue-httpd reject\s+# handle 1, packets [1-9]", text);
        Assert.Contains("verdict reject (rule 1)", text);
        Assert.Contains("2 packets captured", text);
        var pcapng = System.Text.RegularExpressions.Regex.Match(text, @"--pcapng -w (\S+\.pcapng)").Groups[1].Value;
        try
        {
            string comments = Host.Run("tshark", "-r", pcapng, "-T", "fields", "-e", "frame.comment");
            Assert.Equal(2, comments.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(c => c.StartsWith("app=rogue-httpd pid=", StringComparison.Ordinal)));
        }
        finally
        {
            File.Delete(pcapng);
        }
        Assert.DoesNotContain(Directory.GetDirectories("/proc"), IsDemoApplication);
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), $"norman-demo-{demo.Id}")));
    }

    private static bool IsDemoApplication(string procDirectory)
    {
        try
        {
            string exe = new FileInfo(Path.Combine(procDirectory, "exe")).LinkTarget ?? "";
            return exe.StartsWith(AppContext.BaseDirectory, StringComparison.Ordinal) && (exe.EndsWith("/kvdb") || exe.EndsWith("/bobapp") || exe.EndsWith("/rogue-httpd"));
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
