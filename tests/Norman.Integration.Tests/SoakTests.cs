using System.Diagnostics;
using Xunit.Abstractions;

namespace Norman.Integration.Tests;

/// <summary>
/// Item 6 of the hardening issue, short: the soak (`norman-soak 3600` or `./run-bench soak 3600` by hand) for fifteen seconds.
/// Traffic on a paced wire while the policy is replaced every second, a capture starts and stops every second and
/// sockets open and close without pause (TCP ones with garbage connection tables, raced by listings): nothing the policy accepted and the pipes had room for may be lost, and
/// the daemon's heap and descriptors may not grow.
/// </summary>
public sealed class SoakTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_short_soak_loses_no_packet_and_grows_no_memory()
    {
        var start = new ProcessStartInfo(AppProcess.BesideTests("norman-soak")) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("10");
        using var soak = Process.Start(start)!;
        var errors = soak.StandardError.ReadToEndAsync();
        string report = await soak.StandardOutput.ReadToEndAsync();
        await soak.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(120)).Token);
        output.WriteLine(report);
        Assert.True(soak.ExitCode == 0, $"{report}\n{await errors}");
        Assert.StartsWith("soak: PASSED", report);
        Assert.Matches(@"lost 0 ", report);
        Assert.Matches(@"[1-9]\d* policy swaps, [1-9]\d* captures started and stopped, [1-9][\d,]* sockets opened and closed, [1-9][\d,]* listings racing the closes", report);
    }
}
