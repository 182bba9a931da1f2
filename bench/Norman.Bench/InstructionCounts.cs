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

    /// <summary>Instructions per 64-byte packet, peer → RX pipe, with a capture filtered by <paramref name="captureFilter"/> (null: none).</summary>
    public static double PerPacket(string? captureFilter, long packets)
    {
        long once = Count(captureFilter, packets);
        long twice = Count(captureFilter, 2 * packets);
        return (double)(twice - once) / packets;
    }

    private static long Count(string? captureFilter, long packets)
    {
        var start = new ProcessStartInfo("valgrind") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "--tool=callgrind", "--callgrind-out-file=/dev/null", Environment.ProcessPath!, "engine-once",
            captureFilter ?? "-", WarmUp.ToString(CultureInfo.InvariantCulture), packets.ToString(CultureInfo.InvariantCulture) })
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
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"callgrind did not finish {packets} packets within {Limit.TotalMinutes} minutes");
        }
        string text = errors.Result;
        _ = output.Result;
        var collected = Collected().Match(text);
        if (process.ExitCode != 0 || !collected.Success)
        {
            throw new InvalidOperationException($"callgrind failed (exit {process.ExitCode}): {text[^Math.Min(text.Length, 2000)..]}");
        }
        return long.Parse(collected.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"Collected\s*:\s*(\d+)")]
    private static partial Regex Collected();
}
