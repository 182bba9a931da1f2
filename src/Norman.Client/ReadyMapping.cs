using Norman.Core.Pipes;
using Norman.Core.Shm;

namespace Norman.Client;

/// <summary>
/// This user's <see cref="ReadyMap"/>, mapped once into the process for the sockets of one control connection (the
/// daemon keeps one per uid, and a connection has one uid). Counted: the connection holds it, and each socket with a bit
/// in it; the last to let go unmaps it, so no socket can mark memory that is gone.
/// </summary>
internal sealed class ReadyMapping
{
    private readonly SharedMemory _region;
    private int _references = 1;

    private ReadyMapping(SharedMemory region)
    {
        _region = region;
        unsafe
        {
            Map = new ReadyMap(region.Address);
        }
    }

    /// <summary>Maps the descriptor a bind brought (and takes it); one reference, the caller's.</summary>
    public static ReadyMapping Adopt(int fd)
    {
        var region = SharedMemory.Map(fd, ReadyMap.Bytes);
        region.CloseDescriptor(); // the mapping is all it takes
        return new(region);
    }

    public ReadyMap Map { get; }

    /// <summary>One more holder; only while the caller holds a reference already.</summary>
    public ReadyMapping Acquire()
    {
        Interlocked.Increment(ref _references);
        return this;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            _region.Dispose();
        }
    }
}
