namespace Norman.Soak;

/// <summary>
/// The source tree the tests and the benchmark run from (their build output lies under it), and what ./run-tests and
/// ./run-bench publish there for C programs: build/native (libnorman.so, norman.h, libnorman-preload.so).
/// </summary>
public static class SourceTree
{
    public static string Root { get; } = FindRoot();

    /// <summary>build/native, with libnorman in it; a clear error when it was not published.</summary>
    public static string NativeDirectory
    {
        get
        {
            string native = Path.Combine(Root, "build", "native");
            return File.Exists(Path.Combine(native, "libnorman.so")) && File.Exists(Path.Combine(native, "libnorman-preload.so"))
                ? native
                : throw new FileNotFoundException($"{native} has no libnorman.so and libnorman-preload.so: ./run-tests and ./run-bench publish them " +
                    "(scripts/common.sh: publish_native, or dotnet publish src/Norman.Native -c Release -r linux-x64 -o build/native).");
        }
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Norman.slnx")))
            {
                return directory.FullName;
            }
        }
        throw new DirectoryNotFoundException($"No Norman.slnx above {AppContext.BaseDirectory}: run from the repository's build output.");
    }
}
