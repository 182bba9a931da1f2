using System.Diagnostics;

namespace Norman.Integration.Tests;

/// <summary>An application process started by a test: its output read line by line, killed (by its own pid) on dispose.</summary>
public sealed class AppProcess : IDisposable
{
    private readonly Process _process;
    private bool _disposed;

    private AppProcess(Process process) => _process = process;

    public int Pid => _process.Id;
    public Process Process => _process;

    public static string BesideTests(string program) => Path.Combine(AppContext.BaseDirectory, program);

    /// <summary>Starts a program built beside the tests; with <paramref name="runAsUser"/> (a uid, used as the gid too), under setpriv as that user.</summary>
    public static AppProcess Start(string program, string socketPath, string? runAsUser, params string[] arguments) =>
        StartFile(BesideTests(program), socketPath, runAsUser, arguments);

    /// <summary>Starts any program by its path (python3, prlimit…), as <see cref="Start"/> does.</summary>
    public static AppProcess StartFile(string fileName, string socketPath, string? runAsUser, params string[] arguments)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (runAsUser is null)
        {
            start.FileName = fileName;
        }
        else
        {
            start.FileName = "setpriv";
            foreach (var argument in new[] { $"--reuid={runAsUser}", $"--regid={runAsUser}", "--clear-groups", "--", fileName })
            {
                start.ArgumentList.Add(argument);
            }
            start.Environment["HOME"] = "/tmp";
            start.Environment["DOTNET_CLI_HOME"] = "/tmp";
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["NORMAN_SOCKET"] = socketPath;
        return new AppProcess(Process.Start(start)!);
    }

    /// <summary>The next line the program prints; fails the test if none comes within the timeout.</summary>
    public string ReadLine(int timeoutSeconds = 30)
    {
        var line = _process.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(timeoutSeconds)) || line.Result is null)
        {
            string errors = _process.HasExited ? _process.StandardError.ReadToEnd() : "(still running)";
            throw new TimeoutException($"{_process.StartInfo.FileName} printed no line within {timeoutSeconds} s; stderr: {errors}");
        }
        return line.Result;
    }

    public void KillHard()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process.Dispose();
    }
}
