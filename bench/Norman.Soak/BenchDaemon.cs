using Norman.Client;
using Norman.Core.Packets;
using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Soak;

/// <summary>
/// A daemon in this process on a virtual wire with no line rate (or another port, as the caller configures it), its peer
/// sinking port 9 and already resolved, and one socket bound to port 5000: what the benchmark's scenarios and the soak
/// all start from.
/// </summary>
public static class BenchDaemon
{
    /// <summary>Payload of a 64-byte Ethernet frame (60 on the wire plus a 4-byte FCS), and of a 1500-byte IP packet.</summary>
    public static int PayloadFor(int frameSize) => frameSize == 64 ? 64 - 4 - EthernetHeader.Size - UdpPacketBuilder.HeaderLengthV4 : 1500 - UdpPacketBuilder.HeaderLengthV4;

    /// <summary>The benchmark's ingress rules, as a whole policy file (it flushes what was there): <paramref name="rules"/> distinct ones that its flows never match.</summary>
    public static List<string> RulesNotMatching(int rules) =>
        ["flush ruleset", .. Enumerable.Range(0, rules).Select(i => $"add ingress udp dport {10000 + i % 50000} sport {i / 50000 + 1} drop")];

    /// <summary>
    /// Runs <paramref name="run"/> against a fresh daemon on an unlimited virtual wire (or as
    /// <paramref name="configure"/> changes it) with one socket bound to port 5000; returns what it returns.
    /// </summary>
    public static T With<T>(Func<NormanDaemon, NormanUdpSocket, T> run, Action<DaemonOptions>? configure = null)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        // As a kernel-bypass deployment would, the dataplane has a core of its own (the last one).
        var options = new DaemonOptions { SocketPath = Path.Combine(directory, "norman.sock"), LineRateBitsPerSecond = 0,
            BusyPoll = true };
        configure?.Invoke(options);
        var daemon = NormanDaemon.Start(options, NullLog.Instance);
        try
        {
            if (daemon.Peer is { } peer)
            {
                peer.KeepDatagrams = false;
                peer.SinkOnPort(9);
                var neighbour = new Norman.Daemon.Dataplane.AddNeighbourCommand(peer.Address, peer.Mac);
                daemon.Engine.Post(neighbour);
                neighbour.Applied.GetAwaiter().GetResult();
            }
            using var socket = new NormanUdpSocket(options.SocketPath);
            socket.Bind(5000);
            return run(daemon, socket);
        }
        finally
        {
            daemon.DisposeAsync().AsTask().GetAwaiter().GetResult();
            Directory.Delete(directory, recursive: true);
        }
    }
}
