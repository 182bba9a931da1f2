namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// Any port behind a bad cable, on purpose: frames going out and coming in are lost, doubled or held back behind the
/// next one (<see cref="WireImpairment"/>), as netem would do on a kernel that has it. Both ways, so that a transport
/// talking to a real peer over TAP or AF_PACKET is tested in both directions, not only in the one Norman sends.
/// With <paramref name="delayTicks"/>, every frame sent is held that long first (a long path, as netem's delay), up
/// to <see cref="MaxDelayedFrames"/> at once (a frame past them is lost, as a full netem queue drops).
/// Only built when an impairment is asked for: the frames are copied through a batch of its own.
/// </summary>
public sealed class ImpairedPort(IPort inner, WireImpairment outgoing, WireImpairment incoming, long delayTicks = 0) : IPort
{
    public const int MaxDelayedFrames = 16384;

    private readonly PacketBatch _scratch = new();
    private readonly FrameQueue? _delayed = delayTicks > 0 ? new FrameQueue(MaxDelayedFrames) : null;
    private readonly HeldFrame _heldOut = new();
    private readonly HeldFrame _heldIn = new();

    public string Name => inner.Name;
    public IPort Inner => inner;
    public WireImpairment Outgoing => outgoing;
    public WireImpairment Incoming => incoming;

    public int Receive(PacketBatch batch, long now)
    {
        _scratch.Clear();
        int received = inner.Receive(_scratch, now);
        int before = batch.Count;
        for (int i = 0; i < _scratch.Count; i++)
        {
            Pass(incoming, _heldIn, _scratch, i, batch);
        }
        _heldIn.AgeOrRelease(batch);
        // What the cable lost was never received; what it doubled was received twice.
        int count = received + (batch.Count - before) - _scratch.Count;
        // The engine calls Transmit only when it has frames to send, but Receive every breath: a frame held back on
        // its way out must not wait for the next one, which on a quiet connection may come only after a long timeout.
        if (_heldOut.IsHeld)
        {
            _scratch.Clear();
            _heldOut.AgeOrRelease(_scratch);
            Send(_scratch, now);
        }
        ReleaseDelayed(now);
        return count;
    }

    /// <summary>Frames that have met their fate go to the wire now, or after the delay.</summary>
    private int Send(PacketBatch frames, long now)
    {
        if (frames.Count == 0)
        {
            return 0;
        }
        if (_delayed is null)
        {
            return inner.Transmit(frames, now);
        }
        for (int i = 0; i < frames.Count; i++)
        {
            var slot = _delayed.Reserve();
            if (!slot.IsEmpty)
            {
                frames.Frame(i).CopyTo(slot);
                _delayed.Commit(frames.Length(i), now + delayTicks);
            }
        }
        ReleaseDelayed(now);
        return 0;
    }

    private void ReleaseDelayed(long now)
    {
        while (_delayed is { Count: > 0 } && _delayed.PeekTag() <= now)
        {
            _scratch.Clear();
            while (!_scratch.IsFull && _delayed.Count > 0 && _delayed.PeekTag() <= now)
            {
                _delayed.Peek().CopyTo(_scratch.NextBuffer());
                _scratch.Append(_delayed.Peek().Length);
                _delayed.Pop();
            }
            inner.Transmit(_scratch, now);
        }
    }

    public long TransmitBudget(long now) => inner.TransmitBudget(now);

    public IReadOnlyList<int> WakeDescriptors => inner.WakeDescriptors;

    /// <summary>A frame held back is released by time, which nothing signals.</summary>
    public SleepAllowance PrepareToSleep(long now) =>
        _heldOut.IsHeld || _heldIn.IsHeld || _delayed is { Count: > 0 } ? SleepAllowance.Briefly : inner.PrepareToSleep(now);

    public int Transmit(PacketBatch batch, long now)
    {
        _scratch.Clear();
        for (int i = 0; i < batch.Count; i++)
        {
            if (!batch.IsDone(i))
            {
                Pass(outgoing, _heldOut, batch, i, _scratch);
            }
        }
        _heldOut.AgeOrRelease(_scratch);
        return Send(_scratch, now);
    }

    public void Dispose() => inner.Dispose();

    /// <summary>Frame i of <paramref name="from"/> meets its fate: appended to <paramref name="to"/> none, one or two times.</summary>
    private static void Pass(WireImpairment cable, HeldFrame held, PacketBatch from, int i, PacketBatch to)
    {
        var fate = cable.Next();
        if (fate == WireImpairment.Fate.Lose)
        {
            return;
        }
        if (fate == WireImpairment.Fate.HoldBack && held.TryHold(from.Frame(i), from.IsChecksumTrusted(i)))
        {
            return;
        }
        Copy(from.Frame(i), from.IsChecksumTrusted(i), to);
        if (fate == WireImpairment.Fate.Duplicate)
        {
            Copy(from.Frame(i), from.IsChecksumTrusted(i), to);
        }
        held.Release(to);
    }

    private static void Copy(ReadOnlySpan<byte> frame, bool checksumTrusted, PacketBatch to)
    {
        if (to.IsFull)
        {
            return; // a doubled frame past the batch's end is lost: the cable's doing, like the rest
        }
        frame.CopyTo(to.NextBuffer());
        to.Append(frame.Length);
        if (checksumTrusted)
        {
            to.MarkChecksumTrusted(to.Count - 1);
        }
    }

    /// <summary>One frame held back: it goes out behind the next frame, or two breaths later at the latest.</summary>
    private sealed class HeldFrame
    {
        private readonly byte[] _frame = new byte[PacketBatch.FrameSize];
        private int _length;
        private bool _checksumTrusted;
        private int _age;

        public bool IsHeld => _length > 0;

        public bool TryHold(ReadOnlySpan<byte> frame, bool checksumTrusted)
        {
            if (_length > 0)
            {
                return false;
            }
            frame.CopyTo(_frame);
            (_length, _checksumTrusted, _age) = (frame.Length, checksumTrusted, 0);
            return true;
        }

        public void Release(PacketBatch to)
        {
            if (_length > 0 && !to.IsFull)
            {
                Copy(_frame.AsSpan(0, _length), _checksumTrusted, to);
                _length = 0;
            }
        }

        public void AgeOrRelease(PacketBatch to)
        {
            if (_length > 0 && ++_age > 1)
            {
                Release(to);
            }
        }
    }
}
