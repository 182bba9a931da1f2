namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// A fixed ring of frame buffers used by one thread: the simulated peer's replies wait here for the next receive.
/// Allocated once; full means the frame is dropped and counted by the caller.
/// </summary>
public sealed class FrameQueue
{
    private readonly byte[] _memory;
    private readonly int[] _lengths;
    private readonly long[] _tags;
    private readonly int _frameSize;
    private int _head;
    private int _count;

    public FrameQueue(int capacity, int frameSize = PacketBatch.FrameSize)
    {
        _memory = GC.AllocateArray<byte>(capacity * frameSize, pinned: true);
        _lengths = new int[capacity];
        _tags = new long[capacity];
        _frameSize = frameSize;
    }

    public int Count => _count;
    public int Capacity => _lengths.Length;

    /// <summary>The buffer to write the next frame into, or empty when full; then <see cref="Commit"/>.</summary>
    public Span<byte> Reserve() =>
        _count == _lengths.Length ? Span<byte>.Empty : _memory.AsSpan(((_head + _count) % _lengths.Length) * _frameSize, _frameSize);

    /// <summary>Accepts the frame written into <see cref="Reserve"/>, with a number the owner wants back (<see cref="PeekTag"/>).</summary>
    public void Commit(int length, long tag = 0)
    {
        _lengths[(_head + _count) % _lengths.Length] = length;
        _tags[(_head + _count) % _lengths.Length] = tag;
        _count++;
    }

    public long PeekTag() => _tags[_head];

    public ReadOnlySpan<byte> Peek() => _memory.AsSpan(_head * _frameSize, _lengths[_head]);

    public void Pop()
    {
        _head = (_head + 1) % _lengths.Length;
        _count--;
    }
}
