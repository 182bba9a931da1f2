namespace Norman.Integration.Tests;

/// <summary>
/// libnorman as ./run-tests publishes it (build/native/libnorman.so, Native AOT), and C programs compiled against it
/// with the machine's cc, as a user of the library would build them.
/// </summary>
public static class NativeArtifacts
{
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Library
    {
        get
        {
            string path = Path.Combine(RepositoryRoot, "build", "native", "libnorman.so");
            return File.Exists(path) ? path : throw new FileNotFoundException(
                $"{path} is missing: ./run-tests publishes it (dotnet publish src/Norman.Native -c Release -r linux-x64 -o build/native).");
        }
    }

    public static string Header => Path.Combine(RepositoryRoot, "src", "Norman.Native", "include");

    /// <summary>Compiles <paramref name="source"/> (a path under the repository) into <paramref name="directory"/>, linked with libnorman; returns the program's path.</summary>
    public static string Compile(string source, string directory)
    {
        string library = Library;
        string output = Path.Combine(directory, Path.GetFileNameWithoutExtension(source));
        Host.Run("cc", "-Wall", "-Wextra", "-Werror", "-I", Header, Path.Combine(RepositoryRoot, source), "-o", output,
            "-L", Path.GetDirectoryName(library)!, "-l:libnorman.so", $"-Wl,-rpath,{Path.GetDirectoryName(library)}");
        return output;
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
        throw new DirectoryNotFoundException($"No Norman.slnx above {AppContext.BaseDirectory}: the tests run from the repository's build output.");
    }
}
