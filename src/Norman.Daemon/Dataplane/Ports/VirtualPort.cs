using System.Diagnostics;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// The embedded default port: an in-process wire at a configured line rate, with a <see cref="SimulatedPeer"/>
/// at the far end. Needs no privileges, so the demo, most tests and the benchmark run on it anywhere.
/// Towards the peer the wire takes time as a real one does: a frame arrives once it has been serialised, after
/// the frames before it (1,524 bytes take 12.2 µs at 1 Gbit/s), so a round trip on it includes what the wire
/// costs and a frame that waits for another to finish is seen to wait. The port takes frames only while what it
/// holds ends within a queue time (2 µs by default), as a NIC's byte queue limit does: a deeper queue after the
/// scheduler would make a high-priority frame wait behind what was queued before it. With no line rate, frames
/// arrive at once.
/// </summary>
public sealed class VirtualPort : IPort
{
    private readonly LineRate _fromPeer;
    private readonly FrameQueue? _onTheWire;
    private readonly double _ticksPerWireByte;
    private readonly long _queueTicks;
    private long _wireFreeAt;

    /// <summary>The default queue time: 2 µs, about what a dataplane's breath takes when it is busy.</summary>
    public static readonly long DefaultQueueTicks = Stopwatch.Frequency / 500_000;

    /// <param name="peer">The host at the far end.</param>
    /// <param name="lineRateBitsPerSecond">The wire's rate; 0 for none (frames arrive at once).</param>
    /// <param name="queueTicks">How far ahead of the wire frames are taken (<see cref="DefaultQueueTicks"/> if 0). A
    /// caller that breathes less often than that (a test on a coarse clock of its own) needs a deeper queue to keep
    /// the wire busy.</param>
    public VirtualPort(SimulatedPeer peer, long lineRateBitsPerSecond, long queueTicks = 0)
    {
        Peer = peer;
        LineRateBitsPerSecond = lineRateBitsPerSecond;
        _fromPeer = new LineRate(lineRateBitsPerSecond);
        if (lineRateBitsPerSecond > 0)
        {
            _ticksPerWireByte = 8.0 * Stopwatch.Frequency / lineRateBitsPerSecond;
            // A frame is taken while the wire's queue ends within the queue time: a dataplane breathing that often
            // keeps the wire busy, and a priority frame waits behind that and one frame at most.
            _queueTicks = queueTicks > 0 ? queueTicks : DefaultQueueTicks;
            _onTheWire = new FrameQueue((int)(_queueTicks / _ticksPerWireByte / LineRate.WireBytes(0)) + 2 * PacketBatch.Capacity);
        }
    }

    public SimulatedPeer Peer { get; }
    public string Name => "virtual";
    public long LineRateBitsPerSecond { get; }

    public int Receive(PacketBatch batch, long now)
    {
        Arrive(now);
        long budget = _fromPeer.Budget(now);
        long before = budget;
        int produced = Peer.Produce(batch, ref budget, now);
        _fromPeer.ChargeWireBytes(before - budget);
        return produced;
    }

    /// <summary>Bytes of frames the wire can start within the queue time from now (the last one may end later).</summary>
    public long TransmitBudget(long now)
    {
        if (_onTheWire is null)
        {
            return long.MaxValue;
        }
        long room = now + _queueTicks - Math.Max(_wireFreeAt, now);
        return room <= 0 ? 0 : (long)(room / _ticksPerWireByte) + LineRate.WireBytes(1514);
    }

    public int Transmit(PacketBatch batch, long now)
    {
        Arrive(now);
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            var frame = batch.Frame(i);
            var slot = _onTheWire is null ? Span<byte>.Empty : _onTheWire.Reserve();
            if (slot.IsEmpty)
            {
                Peer.Accept(frame, now); // no line rate (or, never, a queue fuller than the budget allows): there at once
                continue;
            }
            // It starts when the wire is free and arrives when its last bit has gone.
            _wireFreeAt = Math.Max(_wireFreeAt, now) + (long)(LineRate.WireBytes(frame.Length) * _ticksPerWireByte);
            frame.CopyTo(slot);
            _onTheWire!.Commit(frame.Length, _wireFreeAt);
        }
        return 0;
    }

    /// <summary>Hands the peer every frame whose last bit has arrived by <paramref name="now"/>, at its arrival time.</summary>
    private void Arrive(long now)
    {
        var wire = _onTheWire;
        while (wire is { Count: > 0 } && wire.PeekTag() <= now)
        {
            Peer.Accept(wire.Peek(), wire.PeekTag());
            wire.Pop();
        }
    }

    public IReadOnlyList<int> WakeDescriptors => [Peer.Doorbell.Fd];

    /// <summary>
    /// The peer's doorbell is taken first, then its queues looked at: whatever another thread gives it after the look
    /// rings the doorbell again. Frames on the wire arrive within microseconds: no sleep while there are any.
    /// </summary>
    public SleepAllowance PrepareToSleep(long now)
    {
        Peer.Doorbell.Drain();
        if (_onTheWire is { Count: > 0 } || Peer.HasWork(out bool later))
        {
            return SleepAllowance.NotNow;
        }
        return later ? SleepAllowance.Briefly : SleepAllowance.UntilWoken;
    }

    public void Dispose() => Peer.Doorbell.Dispose();
}
