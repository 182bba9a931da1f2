using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Daemon.Capture;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane;

namespace Norman.Bench;

/// <summary>
/// The dataplane's own cost per packet, free of thread scheduling: one thread runs the engine's breaths and drains
/// the application's RX ring in turn, so the time per packet is the engine's plus a ring drain, on one core, and
/// two configurations compared in one run differ only by what they configure. Used to price a stage (a capture tap).
/// </summary>
public static unsafe class EngineOnlyScenario
{
    public static double NanosecondsPerPacket(long packets, string? captureFilter)
    {
        var (engine, peer, host) = BenchWire.Create();
        var owner = new PeerIdentity(Environment.ProcessId, 0, 0, "bench", "bench", "/", true);
        using var socket = new NormanSocket(1, owner, IpProtocols.Udp, NetAddress.FromV4(0), 5000, 1024, PipeLayout.DefaultSlotSize);
        engine.Post(new AddSocketCommand(socket.Pipe));
        CaptureTap? tap = captureFilter is null ? null : new CaptureTap(1, captureFilter, 96, true, true, -1, -1);
        if (tap is not null)
        {
            engine.Post(new AddTapCommand(tap));
        }
        var rx = new RingConsumer(socket.Region.Address + PipeLayout.RxRingOffset, 1024, PipeLayout.DefaultSlotSize);
        long Run(long count)
        {
            peer.StartFlood(40000, 5000, DataplaneScenarios.PayloadFor(64), count);
            long received = 0;
            for (long breath = 0; received < count && breath < count; breath++)
            {
                engine.DoWork();
                int available = rx.Available();
                for (int i = 0; i < available; i++)
                {
                    rx.Advance();
                }
                rx.Publish();
                received += available;
            }
            return received;
        }
        // Warm-up by time, not count: tiered compilation promotes a method to its optimised, PGO-guided code only
        // after it has been called for a while and 100 ms have passed without new methods being jitted.
        for (var warm = Stopwatch.StartNew(); warm.ElapsedMilliseconds < 400;)
        {
            Run(50_000);
        }
        var clock = Stopwatch.StartNew();
        long delivered = Run(packets);
        double nanoseconds = clock.Elapsed.TotalNanoseconds / delivered;
        tap?.Dispose();
        return nanoseconds;
    }
}
