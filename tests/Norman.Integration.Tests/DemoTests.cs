using System.Diagnostics;

namespace Norman.Integration.Tests;

[Collection(RunsAlone.Name)]
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
        Assert.Matches(@"tcp\s+LISTEN.*users:\(\(""kvdb"",pid=\d+\)\)", text);
        Assert.Contains("  OK\n  VALUE hello\n  BYE\n", text); // the peer's TCP session with the database
        Assert.Contains("the peer host's request was answered: HTTP/1.0 200 OK", text);
        Assert.Matches(@"users:\(\(""bobapp"",pid=\d+\)\)", text);
        Assert.Contains("0 Norman memfds left open", text);
        Assert.Matches(@"users:\(\(""rogue-httpd"",pid=\d+\)\)", text);
        Assert.Contains("the request was refused (connection refused: a TCP reset)", text);
        Assert.Matches(@"tcp app rogue-httpd reject with tcp reset\s+# handle 1, packets [1-9]", text);
        Assert.Contains("verdict reject (rule 1)", text);
        Assert.Contains("4 packets captured", text);
        AssertQosStory(text);
        var pcapng = System.Text.RegularExpressions.Regex.Match(text, @"--pcapng -w (\S+\.pcapng)").Groups[1].Value;
        try
        {
            string comments = Host.Run("tshark", "-r", pcapng, "-T", "fields", "-e", "frame.comment");
            Assert.Equal(4, comments.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(c => c.StartsWith("app=rogue-httpd pid=", StringComparison.Ordinal)));
            Assert.Contains("GET / HTTP/1.0", Host.Run("tshark", "-r", pcapng)); // the rogue's conversation, as tshark reads it
        }
        finally
        {
            File.Delete(pcapng);
        }
        Assert.DoesNotContain(Directory.GetDirectories("/proc"), IsDemoApplication);
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), $"norman-demo-{demo.Id}")));
    }

    /// <summary>The database's share with Bob sending, then with one `norman qos` command, and the chart of both.</summary>
    private static void AssertQosStory(string text)
    {
        Assert.Contains("$ norman qos add database band 0 match app kvdb", text);
        double DatabaseMbps(string phase) => double.Parse(
            System.Text.RegularExpressions.Regex.Match(text, $@"^  {phase}: database (\d+) Mbit/s", System.Text.RegularExpressions.RegexOptions.Multiline).Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        // Eight bulk sockets leave the database a ninth of the wire; in band 0 it gets all it asks for again.
        Assert.True(DatabaseMbps("database first") > 1.5 * DatabaseMbps("Bob sending"), text);
        Assert.True(DatabaseMbps("database first") > 0.9 * DatabaseMbps("quiet"), text);
        Assert.Matches(@"database\s+0\s+1\s+-\s+line\s+-\s+-\s+\S+\s+[1-9]\d*\s+[1-9]\d*\s+0\s+\d+\s+#1 app kvdb", text);
        string svg = System.Text.RegularExpressions.Regex.Match(text, @"the chart: (\S+\.svg)").Groups[1].Value;
        try
        {
            var chart = System.Xml.Linq.XDocument.Load(svg);
            Assert.Equal("svg", chart.Root!.Name.LocalName);
            Assert.Equal(2, chart.Descendants().Count(e => e.Name.LocalName == "polyline"));
            Assert.Contains(chart.Descendants(), e => e.Value == "database first");
        }
        finally
        {
            File.Delete(svg);
        }
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
