using Norman.Soak;
using System.Diagnostics;
using Norman.Client;

namespace Norman.Bench;

/// <summary>
/// Scenario F, the sockets' side: the peer floods N sockets in turn (one destination port each) and one application
/// thread drains them all in turn, as an event loop serving N sockets would; and what an idle socket costs in memory.
/// </summary>
public static class SocketScaleScenario
{
    /// <summary>Packets per second the application received from <paramref name="sockets"/> sockets together.</summary>
    public static double PacketsPerSecond(int sockets, long packets)
    {
        return BenchDaemon.With((daemon, first) =>
        {
            var all = new List<NormanUdpSocket> { first };
            try
            {
                for (int i = 1; i < sockets; i++)
                {
                    var socket = new NormanUdpSocket(daemon.SocketPath);
                    all.Add(socket);
                    socket.Bind(first.LocalPort + i);
                }
                long received = 0;
                var clock = Stopwatch.StartNew();
                daemon.Peer!.StartFlood(40000, first.LocalPort, BenchDaemon.PayloadFor(64), packets, destinationPorts: sockets);
                while (clock.Elapsed < TimeSpan.FromSeconds(60) && received + daemon.Engine.Counters.TotalDrops() < packets)
                {
                    foreach (var socket in all)
                    {
                        for (int batch = 0; batch < 64 && socket.TryPeek(out _); batch++)
                        {
                            socket.Release();
                            received++;
                        }
                    }
                }
                return received / clock.Elapsed.TotalSeconds;
            }
            finally
            {
                foreach (var socket in all.Skip(1))
                {
                    socket.Dispose();
                }
            }
        }, RoomFor(sockets));
    }

    /// <summary>Binds <paramref name="count"/> sockets with small pipes that do nothing; disposing the result closes them.</summary>
    public static IDisposable IdleSockets(Norman.Daemon.NormanDaemon daemon, int count)
    {
        var sockets = new List<NormanUdpSocket>(count);
        for (int i = 0; i < count; i++)
        {
            var socket = new NormanUdpSocket(daemon.SocketPath);
            sockets.Add(socket);
            socket.Bind(20000 + i, slotCount: 64);
        }
        return new Closing(sockets);
    }

    private sealed class Closing(List<NormanUdpSocket> sockets) : IDisposable
    {
        public void Dispose() => sockets.ForEach(socket => socket.Dispose());
    }

    /// <summary>Raises the per-user limits so one user (the benchmark) may hold this many default sockets.</summary>
    private static Action<Norman.Daemon.DaemonOptions> RoomFor(int sockets) => options =>
    {
        options.MaxSocketsPerUid = Math.Max(options.MaxSocketsPerUid, sockets + 16);
        options.MaxPipeBytesPerUid = Math.Max(options.MaxPipeBytesPerUid, (sockets + 16) * Norman.Core.Pipes.PipeLayout.SocketRegionBytes(
            Norman.Core.Pipes.PipeLayout.DefaultSlotCount, Norman.Core.Pipes.PipeLayout.DefaultSlotSize));
    };

    /// <summary>
    /// Resident memory (daemon and application in this one process) that each of <paramref name="sockets"/> idle
    /// bound sockets adds: its two pipes as far as they are touched, and both sides' objects.
    /// </summary>
    public static double ResidentBytesPerIdleSocket(int sockets)
    {
        return BenchDaemon.With((daemon, first) =>
        {
            var all = new List<NormanUdpSocket>();
            try
            {
                GC.Collect();
                long before = Process.GetCurrentProcess().WorkingSet64;
                for (int i = 1; i <= sockets; i++)
                {
                    var socket = new NormanUdpSocket(daemon.SocketPath);
                    all.Add(socket);
                    socket.Bind(first.LocalPort + i);
                }
                GC.Collect();
                return (double)(Process.GetCurrentProcess().WorkingSet64 - before) / sockets;
            }
            finally
            {
                foreach (var socket in all)
                {
                    socket.Dispose();
                }
            }
        }, RoomFor(sockets));
    }
}
