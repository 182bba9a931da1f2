using Norman.Soak;

namespace Norman.Integration.Tests;

/// <summary>
/// libnorman as ./run-tests publishes it (build/native, Native AOT), and C programs compiled against it with the
/// machine's cc, as a user of the library would build them.
/// </summary>
public static class NativeArtifacts
{
    public static string Library => Path.Combine(SourceTree.NativeDirectory, "libnorman.so");

    /// <summary>Compiles <paramref name="source"/> (a path under the repository) into <paramref name="directory"/>, linked with libnorman; returns the program's path.</summary>
    public static string Compile(string source, string directory, params string[] flags)
    {
        string native = SourceTree.NativeDirectory;
        string output = Path.Combine(directory, Path.GetFileNameWithoutExtension(source));
        Host.Run(["cc", "-Wall", "-Wextra", "-Werror", .. flags, "-I", native, Path.Combine(SourceTree.Root, source), "-o", output,
            "-L", native, "-l:libnorman.so", $"-Wl,-rpath,{native}"]);
        return output;
    }
}
