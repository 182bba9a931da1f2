using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Norman.Bench;

/// <summary>
/// The engine's instructions per packet, counted by valgrind's callgrind rather than timed: the same binary on the
/// same input executes the same instructions whatever else a shared machine is doing, so a cost of a few percent
/// that timing cannot resolve on a noisy VM is read exactly. Each figure is the difference between two processes
/// that flood the same engine with N and with 2N packets after the same warm-up, divided by N: start-up, the JIT
/// and the warm-up cancel out. The JIT compiles each method once, fully optimised (no tiers, hence no profile-guided
/// code), so that no recompilation lands inside the difference.
/// </summary>
public static partial class InstructionCounts
{
    private const long WarmUp = 20_000;
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);

    /// <summary>Why the counts cannot be taken here, or null when they can.</summary>
    public static string? WhyNot() =>
        File.Exists("/usr/bin/valgrind") ? null : "valgrind is not installed (apt install valgrind)";

    /// <summary>
    /// Instructions per 64-byte packet, peer → RX pipe, with a capture filtered by <paramref name="captureFilter"/>
    /// (null: none), with connection tracking asked about every packet if <paramref name="conntrack"/>, and the same
    /// per method (the profile: where a packet's instructions go).
    /// </summary>
    public static (double Total, Dictionary<string, double> ByMethod) PerPacket(string? captureFilter, long packets, bool conntrack = false) =>
        PerPacket(count => ["engine-once", captureFilter ?? "-", WarmUp.ToString(CultureInfo.InvariantCulture),
            count.ToString(CultureInfo.InvariantCulture), conntrack ? "conntrack" : "-"], packets);

    /// <summary>
    /// Instructions per 64-byte packet on the way out, <see cref="QosSchedulerScenario.Sockets"/> full TX pipes → the
    /// wire (schedule, validate, filter, neighbour, port), with <paramref name="classes"/> QoS classes (0: the default
    /// class alone), and the profile.
    /// </summary>
    public static (double Total, Dictionary<string, double> ByMethod) EgressPerPacket(int classes, long packets) =>
        PerPacket(count => ["egress-once", classes.ToString(CultureInfo.InvariantCulture), WarmUp.ToString(CultureInfo.InvariantCulture),
            count.ToString(CultureInfo.InvariantCulture)], packets);

    /// <summary>The difference between a run of N packets and one of 2N, per packet: <paramref name="arguments"/> names the run for a count.</summary>
    private static (double Total, Dictionary<string, double> ByMethod) PerPacket(Func<long, string[]> arguments, long packets)
    {
        var (once, onceMethods) = Count(arguments(packets), packets);
        var (twice, twiceMethods) = Count(arguments(2 * packets), 2 * packets);
        var byMethod = twiceMethods.ToDictionary(m => m.Key, m => (double)(m.Value - onceMethods.GetValueOrDefault(m.Key)) / packets);
        return ((double)(twice - once) / packets, byMethod);
    }

    private static (long Total, Dictionary<string, long> ByMethod) Count(string[] run, long packets)
    {
        string output = Path.Combine(Path.GetTempPath(), $"norman-callgrind-{Guid.NewGuid():N}.out");
        var start = new ProcessStartInfo("valgrind") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "--tool=callgrind", $"--callgrind-out-file={output}", "--dump-instr=yes", "--compress-pos=no",
            "--compress-strings=no", Environment.ProcessPath! }.Concat(run))
        {
            start.ArgumentList.Add(argument);
        }
        // Tiers would recompile on a background thread whenever its timers say, so counts would differ run to run.
        start.Environment["DOTNET_TieredCompilation"] = "0";
        // Under valgrind the JIT's code heap lands beyond 2 GB of its data, optional 32-bit relative addresses fail
        // to encode, and the JIT falls back to unoptimised code for nearly every method (dotnet/runtime#100600).
        start.Environment["DOTNET_JitEnableOptionalRelocs"] = "0";
        // Valgrind translates code once; W^X would remap each JIT-written page twice, slowly, for nothing here.
        start.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        // The runtime names its JIT-compiled code in /tmp/perf-PID.map, for the profile.
        start.Environment["DOTNET_PerfMapEnabled"] = "1";
        using var process = Process.Start(start)!;
        string perfMap = $"/tmp/perf-{process.Id}.map";
        try
        {
            var standardOutput = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Limit))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"callgrind did not finish {packets} packets within {Limit.TotalMinutes} minutes");
            }
            string text = errors.Result;
            _ = standardOutput.Result;
            var collected = Collected().Match(text);
            if (process.ExitCode != 0 || !collected.Success)
            {
                throw new InvalidOperationException($"callgrind failed (exit {process.ExitCode}): {text[^Math.Min(text.Length, 2000)..]}");
            }
            return (long.Parse(collected.Groups[1].Value, CultureInfo.InvariantCulture), CallgrindProfile.ByMethod(output, perfMap));
        }
        finally
        {
            File.Delete(output);
            File.Delete(perfMap);
            File.Delete($"/tmp/perfinfo-{process.Id}.map");
        }
    }

    [GeneratedRegex(@"Collected\s*:\s*(\d+)")]
    private static partial Regex Collected();
}
