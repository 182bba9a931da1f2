using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Norman.Client;
using Norman.Core.Protocol;

namespace Norman.Cli.Commands;

/// <summary>
/// `norman run -- PROGRAM ARGS…`: runs a program unmodified with its UDP and TCP sockets on Norman, through the
/// interposer (libnorman-preload.so, preloaded) and libnorman.so. As `onload ./app`.
/// </summary>
public static class RunCommand
{
    /// <summary>sysexits' EX_UNAVAILABLE: no daemon to run on.</summary>
    private const int Unavailable = 69;

    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket (default: $NORMAN_SOCKET, else /run/norman/norman.sock)." };
        var fallback = new Option<string?>("--fallback")
        {
            Description = "What to do when no daemon runs: 'kernel' runs the program on the kernel's sockets, with a warning (default: refuse).",
        };
        fallback.AcceptOnlyFromAmong("kernel");
        var nativeDirectory = new Option<string?>("--native-dir")
        {
            Description = "Where libnorman.so and libnorman-preload.so are (default: $NORMAN_NATIVE_DIR, beside norman, or the build/native of the source tree norman runs from).",
        };
        var program = new Argument<string[]>("program") { Arity = ArgumentArity.OneOrMore, Description = "The program and its arguments, after --." };
        var command = new Command("run", "Run a program unmodified with its IPv4 and IPv6 UDP and TCP sockets on Norman (kernel bypass), " +
            "as `onload` does: the administrator's ss, filter, QoS and capture see it as any Norman application. Loopback " +
            "stays the kernel's. Not yet: Norman sockets used in a child after fork, or passed across exec.\n\n" +
            "Examples:\n  norman run -- socat UDP-LISTEN:7000,fork EXEC:cat\n  norman run -- python3 -m http.server 8000\n  norman run --fallback kernel -- redis-server --save ''")
        {
            socket, fallback, nativeDirectory, program,
        };
        command.SetAction(result => Run(result.GetValue(program)!, result.GetValue(socket), result.GetValue(fallback) == "kernel", result.GetValue(nativeDirectory)));
        return command;
    }

    private static int Run(string[] program, string? socketPath, bool fallBackToKernel, string? nativeDirectory)
    {
        string resolved = ControlProtocol.ResolveSocketPath(socketPath);
        var start = new ProcessStartInfo(program[0]) { UseShellExecute = false };
        foreach (var argument in program.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }
        try
        {
            using var _ = ControlChannel.Connect(resolved);
            string directory = FindNativeDirectory(nativeDirectory);
            string preload = Path.Combine(directory, "libnorman-preload.so");
            string? already = Environment.GetEnvironmentVariable("LD_PRELOAD");
            start.Environment["LD_PRELOAD"] = string.IsNullOrEmpty(already) ? preload : $"{preload}:{already}";
            start.Environment["NORMAN_LIBRARY"] = Path.Combine(directory, "libnorman.so");
            start.Environment[ControlProtocol.SocketPathVariable] = resolved;
        }
        catch (NormanDaemonUnavailableException error)
        {
            if (!fallBackToKernel)
            {
                Console.Error.WriteLine($"norman run: {error.Message} (--fallback kernel runs {program[0]} on the kernel's sockets instead.)");
                return Unavailable;
            }
            Console.Error.WriteLine($"norman run: warning: {error.Message} Running {program[0]} on the kernel's sockets (--fallback kernel).");
        }
        catch (FileNotFoundException error)
        {
            Console.Error.WriteLine($"norman run: {error.Message}");
            return 1;
        }
        return RunToExit(start);
    }

    /// <summary>Starts the program with this terminal, passes on SIGTERM and SIGHUP, and returns its exit code (128 + signal if one ended it).</summary>
    private static int RunToExit(ProcessStartInfo start)
    {
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            Console.Error.WriteLine($"norman run: cannot run {start.FileName}: {error.Message}");
            return 127; // as a shell says "command not found"
        }
        using (process)
        using (Forward(PosixSignal.SIGTERM, process))
        using (Forward(PosixSignal.SIGHUP, process))
        // Ctrl-C reaches the program from the terminal itself (one process group): norman only waits for it to end.
        using (PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true))
        {
            process.WaitForExit();
            return process.ExitCode;
        }
    }

    private static PosixSignalRegistration Forward(PosixSignal signal, Process process) => PosixSignalRegistration.Create(signal, context =>
    {
        context.Cancel = true;
        Kill(process.Id, signal == PosixSignal.SIGTERM ? 15 : 1);
    });

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    private static string FindNativeDirectory(string? given)
    {
        var candidates = new List<string>();
        if ((given ?? Environment.GetEnvironmentVariable("NORMAN_NATIVE_DIR")) is { Length: > 0 } named)
        {
            candidates.Add(named);
        }
        else
        {
            candidates.Add(AppContext.BaseDirectory);
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                candidates.Add(Path.Combine(directory.FullName, "build", "native"));
            }
        }
        return candidates.FirstOrDefault(c => File.Exists(Path.Combine(c, "libnorman.so")) && File.Exists(Path.Combine(c, "libnorman-preload.so")))
            ?? throw new FileNotFoundException(
                $"libnorman.so and libnorman-preload.so are not in {string.Join(", ", candidates.Take(2))}{(candidates.Count > 2 ? " or a build/native above it" : "")}: " +
                "build them with ./run-tests (or scripts/common.sh's publish_native), or say where they are with --native-dir.");
    }
}
