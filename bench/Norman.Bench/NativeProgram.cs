using System.Diagnostics;
using Norman.Soak;

namespace Norman.Bench;

/// <summary>A C benchmark program built against libnorman as ./run-bench publishes it (build/native).</summary>
public static class NativeProgram
{
    /// <summary>Compiles <paramref name="source"/> (a path under the repository) with -O2 into a temporary directory; returns the program.</summary>
    public static string Compile(string source)
    {
        string native = SourceTree.NativeDirectory;
        string output = Path.Combine(Path.GetTempPath(), $"norman-bench-{Path.GetFileNameWithoutExtension(source)}-{Environment.ProcessId}");
        using var cc = Process.Start("cc", ["-O2", "-I", native, Path.Combine(SourceTree.Root, source), "-o", output, "-L", native, "-l:libnorman.so", $"-Wl,-rpath,{native}"])!;
        cc.WaitForExit();
        return cc.ExitCode == 0 ? output : throw new InvalidOperationException($"cc failed on {source} (exit {cc.ExitCode}).");
    }
}
