using System.CommandLine;
using System.Runtime.InteropServices;
using Norman.Daemon;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Cli.Commands;

/// <summary>`norman up`: runs the daemon in the foreground until SIGINT or SIGTERM.</summary>
public static class UpCommand
{
    public static Command Create()
    {
        var defaults = new DaemonOptions();
        var socket = new Option<string?>("--socket", "-S") { Description = "Control socket path (default: $NORMAN_SOCKET, else /run/norman/norman.sock)." };
        var port = new Option<string>("--port") { Description = "The wire: 'virtual' (an in-process wire to a simulated peer host), 'wire:NAME' (a wire shared with another daemon on this machine: two hosts, no root), 'tap:DEVICE' (a TAP device: the Linux kernel is the peer; needs CAP_NET_ADMIN), or 'afpacket:INTERFACE' (an existing interface through TPACKET_V3 rings; needs CAP_NET_RAW).", DefaultValueFactory = _ => defaults.Port };
        var netns = new Option<string?>("--netns") { Description = "For a TAP port: move the device into this network namespace (the peer's side)." };
        var address = new Option<string>("--address") { Description = "This host's IPv4 address and prefix on the wire.", DefaultValueFactory = _ => defaults.Address };
        var peer = new Option<string>("--peer") { Description = "The simulated peer's address (virtual port).", DefaultValueFactory = _ => defaults.PeerAddress };
        var gateway = new Option<string?>("--gateway") { Description = "Next hop for addresses off the subnet." };
        var mac = new Option<string?>("--mac") { Description = "This host's MAC (default: random, locally administered)." };
        var lineRate = new Option<string>("--line-rate") { Description = "The wire's line rate, e.g. 10G, 1G, 100M; 0 for none.", DefaultValueFactory = _ => "10G" };
        var slots = new Option<int>("--slots") { Description = "Slots in each socket's RX and TX pipe (a power of two).", DefaultValueFactory = _ => defaults.SlotCount };
        var maxSockets = new Option<int>("--max-sockets-per-uid") { Description = "Sockets one user may hold.", DefaultValueFactory = _ => defaults.MaxSocketsPerUid };
        var noChecksum = new Option<bool>("--no-rx-checksum") { Description = "Do not verify UDP checksums on receive (as `ethtool -K rx off`)." };
        var cpu = new Option<int?>("--cpu") { Description = "Pin the dataplane thread to this CPU (it busy-polls: give it a core of its own)." };
        var busyPoll = new Option<bool>("--busy-poll") { Description = "Never let the dataplane sleep when idle: lowest latency, one core always busy." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Log every bind, close and refusal to stderr." };
        var command = new Command("up", "Run the Norman daemon (control plane and dataplane) in the foreground.\n\nExample:\n  norman up --socket /tmp/norman.sock --line-rate 1G -v")
        {
            socket, port, netns, address, peer, gateway, mac, lineRate, slots, maxSockets, noChecksum, cpu, busyPoll, verbose,
        };
        command.SetAction(async (result, cancellation) =>
        {
            var options = new DaemonOptions
            {
                SocketPath = result.GetValue(socket),
                Port = result.GetValue(port)!,
                Namespace = result.GetValue(netns),
                Address = result.GetValue(address)!,
                PeerAddress = result.GetValue(peer)!,
                Gateway = result.GetValue(gateway),
                Mac = result.GetValue(mac),
                LineRateBitsPerSecond = LineRate.Parse(result.GetValue(lineRate)!),
                SlotCount = result.GetValue(slots),
                MaxSocketsPerUid = result.GetValue(maxSockets),
                VerifyChecksums = !result.GetValue(noChecksum),
                Verbose = result.GetValue(verbose),
                DataplaneCpu = result.GetValue(cpu),
                BusyPoll = result.GetValue(busyPoll),
            };
            return await RunAsync(options, cancellation);
        });
        return command;
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
        var stop = new TaskCompletionSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.TrySetResult(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.TrySetResult(); });
        using var onCancel = cancellation.Register(() => stop.TrySetResult());
        var rate = options.LineRateBitsPerSecond == 0 ? "no line rate" : $"line rate {options.LineRateBitsPerSecond / 1e9:0.###} Gbit/s";
        Console.WriteLine($"normand: control socket {daemon.SocketPath}; port {daemon.Engine.Port.Name} ({daemon.Engine.Host}, {rate}" +
            (daemon.Peer is { } peer ? $", peer {peer.Address})" : ")"));
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
