using System.CommandLine;
using System.Runtime.InteropServices;
using Norman.Daemon;

namespace Norman.Cli.Commands;

/// <summary>
/// `norman up`: runs the daemon in the foreground until SIGINT or SIGTERM. Settings come from the config file
/// (/etc/norman/norman.conf, or --config), and a flag given on the command line overrides the file.
/// </summary>
public static class UpCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c")
        {
            Description = $"Config file: one 'name = value' a line, names as these flags (default {DaemonSettings.DefaultConfigPath}, if it exists).",
        };
        var command = new Command("up", "Run the Norman daemon (control plane and dataplane) in the foreground.\n\n" +
            "Examples:\n  norman up --socket /tmp/norman.sock --line-rate 1G -v\n" +
            "  norman up --port tap:norman0 --address 198.18.1.1/24 --gateway 198.18.1.254\n" +
            "  norman up --port afpacket:eth1 --address 198.18.1.1/24 --busy-poll --cpu 1\n" +
            "  norman up --port xdp:eth1 --address 198.18.1.1/24      # an address of its own beside the kernel's\n" +
            "  norman up --port xdp:eth1 --share-address              # the kernel's address; only the ports Norman's sockets hold")
        {
            config,
        };
        var flags = new List<(DaemonSettings.Setting Setting, Option Option)>();
        foreach (var setting in DaemonSettings.All)
        {
            Option option = setting.IsSwitch ? new Option<bool>("--" + setting.Name) { Description = setting.Description }
                : setting.Repeatable ? new Option<string[]>("--" + setting.Name) { Description = setting.Description }
                : new Option<string>("--" + setting.Name) { Description = setting.Description };
            if (setting.Name == "verbose")
            {
                option.Aliases.Add("-v");
            }
            if (setting.Name == "socket")
            {
                option.Aliases.Add("-S");
            }
            command.Options.Add(option);
            flags.Add((setting, option));
        }
        command.SetAction(async (result, cancellation) =>
        {
            DaemonOptions options;
            try
            {
                options = Resolve(result, result.GetValue(config), flags);
            }
            catch (Exception error) when (error is FormatException or IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"norman up: {error.Message}");
                return 2;
            }
            return await RunAsync(options, cancellation);
        });
        return command;
    }

    /// <summary>Defaults, then the config file, then the flags given on the command line.</summary>
    public static DaemonOptions Resolve(ParseResult result, string? configPath, List<(DaemonSettings.Setting Setting, Option Option)> flags)
    {
        var options = new DaemonOptions();
        string? path = configPath ?? (File.Exists(DaemonSettings.DefaultConfigPath) ? DaemonSettings.DefaultConfigPath : null);
        if (path is not null)
        {
            foreach (var (name, (value, line)) in DaemonSettings.ReadFile(path))
            {
                DaemonSettings.Apply(options, name, value, $"{path}:{line}");
            }
        }
        foreach (var (setting, option) in flags)
        {
            if (result.GetResult(option) is not { Implicit: false })
            {
                continue;
            }
            string value = option switch
            {
                Option<bool> flag => result.GetValue(flag) ? "yes" : "no",
                Option<string[]> several => string.Join(',', result.GetValue(several)!),
                _ => result.GetValue((Option<string>)option)!,
            };
            DaemonSettings.Apply(options, setting.Name, value, $"--{setting.Name}");
        }
        return options;
    }

    private static async Task<int> RunAsync(DaemonOptions options, CancellationToken cancellation)
    {
        NormanDaemon daemon;
        try
        {
            daemon = NormanDaemon.Start(options);
        }
        catch (Exception error) when (error is InvalidOperationException or ArgumentException or FormatException or IOException)
        {
            Console.Error.WriteLine($"norman up: {error.Message}");
            return 1;
        }
        // SIGTERM and SIGINT reach us as the invocation's cancellation (System.CommandLine's handler, which gives the stop
        // ten seconds): a handler of our own as well let the command end while that one was still running, and it then
        // cancelled a disposed token and the process aborted (exit 134) on a clean stop.
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var onCancel = cancellation.Register(() => stop.TrySetResult());
        var rate = options.LineRateBitsPerSecond == 0 ? "no line rate" : $"line rate {options.LineRateBitsPerSecond / 1e9:0.###} Gbit/s";
        string addresses = string.Concat(daemon.Engine.Host.Prefixes6.Select(a => $", {a.Address}/{a.PrefixLength}"));
        Console.WriteLine($"normand: control socket {daemon.SocketPath}; port {daemon.Engine.Port.Name} ({daemon.Engine.Host}{addresses}, {rate}" +
            (daemon.Peer is { } peer ? $", peer {peer.Address})" : ")"));
        if (daemon.Metrics is { } metrics)
        {
            Console.WriteLine($"normand: Prometheus metrics at http://{metrics.Endpoint}/metrics");
        }
        if (daemon.SocketPath == Norman.Core.Protocol.ControlProtocol.UserSocketPath() && options.SocketPath is null)
        {
            Console.WriteLine($"normand: not root, so the socket is in this user's runtime directory ($XDG_RUNTIME_DIR), not /run/norman: " +
                "this user's norman commands and applications find it there; others give --socket or NORMAN_SOCKET.");
        }
        Console.WriteLine("normand: running; stop with Ctrl-C or SIGTERM.");
        while (!stop.Task.IsCompleted && daemon.DataplaneFailure is null)
        {
            await Task.WhenAny(stop.Task, Task.Delay(500));
        }
        await daemon.DisposeAsync();
        if (daemon.DataplaneFailure is { } failure)
        {
            Console.Error.WriteLine($"normand: the dataplane stopped on an internal error; this is a bug, please report it with this trace:\n{failure}");
            return 70; // EX_SOFTWARE
        }
        Console.WriteLine("normand: stopped.");
        return 0;
    }
}
