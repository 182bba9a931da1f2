using System.Diagnostics;
using System.Globalization;
using Norman.Core.Pipes;
using Norman.Core.Shm;
using Norman.Daemon.Dataplane;

namespace Norman.Bench;

/// <summary>
/// Scenario A, the floor: a bare single-producer/single-consumer ring in shared memory between two processes (Norman's
/// own pipe ring, with nothing else), moving frames of the same size in batches of 32. Whatever design sits on this
/// ring on this machine pays at least this; Norman's figures are read as a share of it. The producer runs on the
/// dataplane's core (the last), the consumer where the scheduler puts it, as an application would.
/// </summary>
public static unsafe class RawRingScenario
{
    private const int Slots = 1024;
    private const int Batch = 32;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    /// <summary>Packets per second the consumer process received, timed by it from its first packet to its last.</summary>
    public static double PacketsPerSecond(int frameSize, long packets)
    {
        using var region = SharedMemory.Create("norman:bench:raw-ring", PipeLayout.RingBytes(Slots, PipeLayout.DefaultSlotSize));
        RingInitializer.Initialize(region.Address, Slots, PipeLayout.DefaultSlotSize);
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        foreach (var argument in new[] { "raw-ring-consume", $"/proc/{Environment.ProcessId}/fd/{region.Fd}",
            region.Length.ToString(CultureInfo.InvariantCulture), packets.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }
        using var consumer = Process.Start(start)!;
        try
        {
            if (consumer.StandardOutput.ReadLine() != "ready")
            {
                throw new InvalidOperationException("the raw-ring consumer did not start");
            }
            var producer = new Thread(() => Produce(region.Address, frameSize, packets)) { Name = "raw-ring producer" };
            producer.Start();
            producer.Join();
            string? result = consumer.StandardOutput.ReadLine();
            if (!consumer.WaitForExit(Limit) || result is null)
            {
                throw new TimeoutException("the raw-ring consumer did not finish");
            }
            return double.Parse(result, CultureInfo.InvariantCulture);
        }
        finally
        {
            if (!consumer.HasExited)
            {
                consumer.Kill();
            }
        }
    }

    private static void Produce(byte* ring, int frameSize, long packets)
    {
        CpuAffinity.PinCurrentThread(Environment.ProcessorCount - 1);
        var producer = new RingProducer(ring, Slots, PipeLayout.DefaultSlotSize);
        Span<byte> frame = stackalloc byte[frameSize];
        frame.Fill(0x5A);
        long sent = 0;
        var clock = Stopwatch.StartNew();
        while (sent < packets && clock.Elapsed < Limit)
        {
            int room = (int)Math.Min(Math.Min(producer.FreeSlots(), Batch), packets - sent);
            for (int i = 0; i < room; i++)
            {
                frame.CopyTo(producer.Claim());
                producer.Commit(frameSize);
            }
            if (room > 0)
            {
                producer.Publish();
                sent += room;
            }
        }
    }

    /// <summary>The consumer process: maps the producer's ring through /proc, reads every packet, prints its rate.</summary>
    public static void Consume(string ringPath, long length, long packets)
    {
        var handle = File.OpenHandle(ringPath, FileMode.Open, FileAccess.ReadWrite);
        int fd = (int)handle.DangerousGetHandle();
        handle.SetHandleAsInvalid(); // the mapping below owns the fd now
        using var region = SharedMemory.Map(fd, length);
        var consumer = new RingConsumer(region.Address, Slots, PipeLayout.DefaultSlotSize);
        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        long received = 0, touched = 0;
        var clock = new Stopwatch();
        var limit = Stopwatch.StartNew();
        while (received < packets && limit.Elapsed < Limit)
        {
            int available = consumer.Available();
            if (available == 0)
            {
                continue;
            }
            clock.Start();
            for (int i = 0; i < available; i++)
            {
                touched += consumer.Peek()[0]; // the application reads its packet, at least its first byte
                consumer.Advance();
            }
            consumer.Publish();
            received += available;
        }
        clock.Stop();
        GC.KeepAlive(touched);
        Console.Out.WriteLine((received / clock.Elapsed.TotalSeconds).ToString(CultureInfo.InvariantCulture));
    }
}
