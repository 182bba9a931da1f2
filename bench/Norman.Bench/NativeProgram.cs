using System.Diagnostics;

namespace Norman.Bench;

/// <summary>A C benchmark program built against libnorman as ./run-bench publishes it (build/native).</summary>
public static class NativeProgram
{
    /// <summary>Where ./run-bench published libnorman.so and the interposer of `norman run` (build/native).</summary>
    public static string Directory
    {
        get
        {
            string native = Path.Combine(RepositoryRoot(), "build", "native");
            return File.Exists(Path.Combine(native, "libnorman-preload.so")) ? native
                : throw new FileNotFoundException($"{native}/libnorman-preload.so is missing: ./run-bench publishes it (scripts/common.sh: publish_native).");
        }
    }

    /// <summary>Compiles <paramref name="source"/> (a path under the repository) with -O2 into a temporary directory; returns the program.</summary>
    public static string Compile(string source)
    {
        string root = RepositoryRoot();
        string native = Path.Combine(root, "build", "native");
        if (!File.Exists(Path.Combine(native, "libnorman.so")))
        {
            throw new FileNotFoundException($"{native}/libnorman.so is missing: ./run-bench publishes it (scripts/common.sh: publish_native).");
        }
        string output = Path.Combine(Path.GetTempPath(), $"norman-bench-{Path.GetFileNameWithoutExtension(source)}-{Environment.ProcessId}");
        using var cc = Process.Start("cc", ["-O2", "-I", native, Path.Combine(root, source), "-o", output, "-L", native, "-l:libnorman.so", $"-Wl,-rpath,{native}"])!;
        cc.WaitForExit();
        return cc.ExitCode == 0 ? output : throw new InvalidOperationException($"cc failed on {source} (exit {cc.ExitCode}).");
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Norman.slnx")))
            {
                return directory.FullName;
            }
        }
        throw new DirectoryNotFoundException($"No Norman.slnx above {AppContext.BaseDirectory}.");
    }
}
