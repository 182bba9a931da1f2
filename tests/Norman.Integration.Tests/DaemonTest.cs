using System.Diagnostics;

namespace Norman.Integration.Tests;

/// <summary>A test class with a fresh in-process daemon per test, disposed after it, and the `norman` command against it.</summary>
public abstract class DaemonTest : IAsyncLifetime
{
    protected DaemonFixture Daemon { get; private set; } = null!;

    /// <summary>The line rate of the virtual wire; 0 (the default) for none.</summary>
    protected virtual long LineRate => 0;

    public Task InitializeAsync()
    {
        Daemon = new DaemonFixture(LineRate);
        return Task.CompletedTask;
    }

    public virtual async Task DisposeAsync() => await Daemon.DisposeAsync();

    /// <summary>Runs `norman ARGUMENTS` against the daemon and returns what it printed; it must exit 0.</summary>
    protected async Task<string> Norman(params string[] arguments)
    {
        var (code, output) = await Try(arguments);
        Assert.True(code == 0, $"norman {string.Join(' ', arguments)} exited {code}: {output}");
        return output;
    }

    /// <summary>Runs `norman ARGUMENTS` against the daemon: its exit code, and its output and errors together.</summary>
    protected Task<(int, string)> Try(params string[] arguments) => TryAt(Daemon.SocketPath, arguments);

    /// <summary>Runs `norman ARGUMENTS` against the daemon at <paramref name="socketPath"/>, as <see cref="Try"/>.</summary>
    protected static async Task<(int, string)> TryAt(string socketPath, params string[] arguments)
    {
        var start = new ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["NORMAN_SOCKET"] = socketPath;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        return (process.ExitCode, await output + await errors);
    }
}
