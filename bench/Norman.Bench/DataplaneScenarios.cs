using System.Diagnostics;
using Norman.Client;
using Norman.Core.Packets;
using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Bench;

/// <summary>
/// Scenario B of the benchmark: packets through a real daemon (dataplane thread, memfd pipes, control socket) on a
/// virtual wire with no line rate, between the simulated peer and an application thread that busy-polls through
/// NormanUdpSocket's zero-copy calls. The dataplane thread spins on its own core, so wall time per packet is the
/// dataplane core's time per packet.
/// </summary>
public static class DataplaneScenarios
{
    /// <summary>Payload of a 64-byte Ethernet frame (60 on the wire plus a 4-byte FCS), and of a 1500-byte IP packet.</summary>
    public static int PayloadFor(int frameSize) => frameSize == 64 ? 64 - 4 - EthernetHeader.Size - UdpPacketBuilder.HeaderLengthV4 : 1500 - UdpPacketBuilder.HeaderLengthV4;

    /// <summary>Capture drops counted by the last run's tap (packets the capture ring had no room for).</summary>
    public static long LastCaptureDrops { get; private set; }

    /// <summary><paramref name="rules"/> ingress rules that this flow does not match come before the verdict (the policy: accept).</summary>
    /// <remarks>
    /// With <paramref name="captureFilter"/>, a capture tap with that libpcap filter is in the path; nobody reads its
    /// ring (the slowest reader there is), so once full it can only count drops.
    /// </remarks>
    public static (double Pps, long Drops, long AllocatedBytes) PeerToApplication(int frameSize, long packets, int rules = 0, int setSize = 0,
        string? captureFilter = null)
    {
        return WithDaemon((daemon, socket) =>
        {
            Norman.Daemon.Capture.CaptureTap? tap = null;
            if (captureFilter is not null)
            {
                tap = new Norman.Daemon.Capture.CaptureTap(1, captureFilter, 96, inbound: true, outbound: true, onlyUid: -1, onlyAppId: -1);
                var add = new Norman.Daemon.Dataplane.AddTapCommand(tap);
                daemon.Engine.Post(add);
                add.Applied.GetAwaiter().GetResult();
            }
            if (setSize > 0)
            {
                // A set of addresses the peer is not among, and one rule that looks the source up in it.
                daemon.Policy.AddSet("blocked", "ipv4_addr", Enumerable.Range(0, setSize).Select(i => $"203.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}").ToList());
                daemon.Policy.Add(Norman.Daemon.Policy.Chain.Ingress, ["ip", "saddr", "@blocked", "drop"]);
            }
            if (rules > 0)
            {
                daemon.Policy.Restore(Enumerable.Range(0, rules).Select(i => $"add ingress udp dport {10000 + i % 50000} sport {i / 50000 + 1} drop").ToList(), "bench");
            }
            var peer = daemon.Peer!;
            long received = 0;
            var clock = Stopwatch.StartNew();
            peer.StartFlood(40000, socket.LocalPort, PayloadFor(frameSize), packets);
            var deadline = TimeSpan.FromSeconds(60);
            while (clock.Elapsed < deadline)
            {
                int batch = 0;
                while (batch < 64 && socket.TryPeek(out _))
                {
                    socket.Release();
                    batch++;
                }
                received += batch;
                if (received + daemon.Engine.Counters.TotalDrops() >= packets)
                {
                    break;
                }
            }
            double seconds = clock.Elapsed.TotalSeconds;
            LastProcessedPps = daemon.Engine.Counters.PortRxPackets / seconds;
            LastCaptureDrops = tap?.Dropped ?? 0;
            return (received / seconds, daemon.Engine.Counters.TotalDrops());
        });
    }

    /// <summary>Packets the dataplane handled (delivered or dropped) per second of the last <see cref="PeerToApplication"/> run.</summary>
    public static double LastProcessedPps { get; private set; }

    public static (double Pps, long Drops, long AllocatedBytes) ApplicationToPeer(int frameSize, long packets)
    {
        return WithDaemon((daemon, socket) =>
        {
            var peer = daemon.Peer!;
            int payload = PayloadFor(frameSize);
            var destination = NetAddress.Parse("198.18.0.2");
            long sent = 0;
            var clock = Stopwatch.StartNew();
            var deadline = TimeSpan.FromSeconds(60);
            while (Volatile.Read(ref peer.SunkPackets) < packets && clock.Elapsed < deadline)
            {
                for (int i = 0; i < 64 && sent < packets; i++)
                {
                    if (socket.GetSendBuffer().IsEmpty)
                    {
                        break;
                    }
                    socket.CommitSendTo(payload, destination, 9);
                    sent++;
                }
                socket.Flush();
            }
            double seconds = clock.Elapsed.TotalSeconds;
            return (Volatile.Read(ref peer.SunkPackets) / seconds, daemon.Engine.Counters.TotalDrops());
        });
    }

    private static (double, long, long) WithDaemon(Func<NormanDaemon, NormanUdpSocket, (double Pps, long Drops)> run)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        // As a kernel-bypass deployment would, the dataplane has a core of its own (the last one).
        var options = new DaemonOptions { SocketPath = Path.Combine(directory, "norman.sock"), LineRateBitsPerSecond = 0,
            BusyPoll = true };
        var daemon = NormanDaemon.Start(options, NullLog.Instance);
        try
        {
            daemon.Peer!.KeepDatagrams = false;
            daemon.Peer.SinkOnPort(9);
            var neighbour = new Norman.Daemon.Dataplane.AddNeighbourCommand(daemon.Peer.Address, daemon.Peer.Mac);
            daemon.Engine.Post(neighbour);
            neighbour.Applied.GetAwaiter().GetResult();
            using var socket = new NormanUdpSocket(options.SocketPath);
            socket.Bind(5000);
            long allocatedBefore = daemon.DataplaneAllocatedBytes;
            var (pps, drops) = run(daemon, socket);
            return (pps, drops, daemon.DataplaneAllocatedBytes - allocatedBefore);
        }
        finally
        {
            daemon.DisposeAsync().AsTask().GetAwaiter().GetResult();
            Directory.Delete(directory, recursive: true);
        }
    }
}
