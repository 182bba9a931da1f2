using System.Diagnostics;

namespace Norman.Integration.Tests;

/// <summary>
/// A test host: a network namespace the test creates, with every address inside it, deleted on dispose
/// (with whatever interfaces it holds).
/// </summary>
public sealed class TestNamespace : IDisposable
{
    private readonly List<Process> _background = new();

    public TestNamespace(string role)
    {
        Name = $"nrm-{role}-{Guid.NewGuid().ToString("N")[..8]}";
        Host.Run("ip", "netns", "add", Name);
        Run("ip", "link", "set", "lo", "up");
    }

    public string Name { get; }

    /// <summary>Runs a command inside the namespace and returns its output; fails the test on a non-zero exit.</summary>
    public string Run(params string[] command) => Host.Run(["ip", "netns", "exec", Name, .. command]);

    /// <summary>Runs a command inside the namespace, returning exit code, stdout and stderr.</summary>
    public (int ExitCode, string Output, string Errors) Try(string? input, params string[] command) =>
        Host.Try(input, ["ip", "netns", "exec", Name, .. command]);

    /// <summary>Starts a long-running command inside the namespace; the namespace kills it (by its pid) on dispose.</summary>
    public Process Start(params string[] command) => Start(redirectInput: false, command);

    /// <summary>Starts a command in the namespace, in the background; with <paramref name="redirectInput"/>, the test writes its stdin.</summary>
    public Process Start(bool redirectInput, params string[] command)
    {
        var process = Host.Start(["ip", "netns", "exec", Name, .. command], redirectInput);
        _background.Add(process);
        return process;
    }

    /// <summary>Starts a command and waits until its stderr shows <paramref name="ready"/> (socat -d -d says when it listens).</summary>
    public Process StartAndWaitFor(string ready, params string[] command)
    {
        var process = Start(command);
        Host.WaitForError(process, ready, TimeSpan.FromSeconds(20));
        return process;
    }

    public void Dispose()
    {
        foreach (var process in _background)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
                // Already disposed by the test (`using var server = peer.Start…`): the sweep below ends it.
            }
            process.Dispose();
        }
        // Whatever still runs in the namespace was started in it by this test (a server whose Process the test
        // disposed, a forked child of one): deleting the namespace would leave it running, so it ends here, by pid.
        var (_, pids, _) = Host.Try(null, "ip", "netns", "pids", Name);
        var left = pids.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (left.Length > 0)
        {
            Host.Try(null, ["kill", "-KILL", .. left]);
        }
        Host.Try(null, "ip", "netns", "del", Name);
    }
}

/// <summary>Runs commands on the host, bounded in time.</summary>
public static class Host
{
    public static string Run(params string[] command)
    {
        var (code, output, errors) = Try(null, command);
        if (code != 0)
        {
            throw new InvalidOperationException($"`{string.Join(' ', command)}` exited {code}: {errors}{output}");
        }
        return output;
    }

    public static (int ExitCode, string Output, string Errors) Try(string? input, params string[] command)
    {
        using var process = Start(command, redirectInput: input is not null);
        // Read while writing: a program that echoes (socat, nc) blocks on a full output pipe until it is read.
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        var writing = input is null ? Task.CompletedTask : WriteAndCloseAsync(process.StandardInput, input);
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{string.Join(' ', command)}` did not finish within 60 s");
        }
        writing.GetAwaiter().GetResult();
        return (process.ExitCode, output.Result, errors.Result);
    }

    private static async Task WriteAndCloseAsync(StreamWriter input, string text)
    {
        try
        {
            await input.WriteAsync(text);
            input.Close();
        }
        catch (IOException)
        {
            // The program exited before reading everything: its exit code and output tell the test.
        }
    }

    /// <summary>Reads a process's stderr until a line contains <paramref name="text"/>; throws, with what it said, if none does in time.</summary>
    public static void WaitForError(Process process, string text, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var seen = new System.Text.StringBuilder();
        while (clock.Elapsed < timeout)
        {
            var line = process.StandardError.ReadLineAsync();
            if (!line.Wait(timeout - clock.Elapsed) || line.Result is null)
            {
                break;
            }
            seen.AppendLine(line.Result);
            if (line.Result.Contains(text, StringComparison.Ordinal))
            {
                return;
            }
        }
        throw new TimeoutException($"`{string.Join(' ', process.StartInfo.ArgumentList)}` never said '{text}'; it said: {seen}");
    }

    public static Process Start(string[] command, bool redirectInput = false)
    {
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
        };
        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }
        return Process.Start(start)!;
    }
}
