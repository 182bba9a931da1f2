using Norman.Core.Pipes;
using Norman.Core.Shm;

namespace Norman.Daemon.Control;

/// <summary>
/// What a socket's pipes are made of before the socket exists: the sealed memfd with both rings initialised (and, for
/// TCP, room for its connection table), the wake-up the dataplane signals and the doorbell the application rings.
/// Made once and given to one socket only: memory an application has mapped is never handed to another.
/// </summary>
public sealed unsafe class PipeMemory : IDisposable
{
    private PipeMemory(SharedMemory region, WakeupSender wakeup, Doorbell doorbell)
    {
        Region = region;
        Wakeup = wakeup;
        Doorbell = doorbell;
    }

    /// <summary>The descriptors one holds: its memfd, its wake-up's eventfd and epoll, and its doorbell.</summary>
    public const int Descriptors = 4;

    public SharedMemory Region { get; }
    public WakeupSender Wakeup { get; }
    public Doorbell Doorbell { get; }

    /// <summary>Creates, seals, maps and initialises a socket's memory (its pages are backed only as they are touched).</summary>
    public static PipeMemory Create(int slotCount, int slotSize, bool tcp)
    {
        var region = SharedMemory.Create(tcp ? "norman:tcp" : "norman:udp", PipeLayout.SocketRegionBytes(slotCount, slotSize, tcp));
        WakeupSender? wakeup = null;
        try
        {
            RingInitializer.Initialize(region.Address + PipeLayout.RxRingOffset, slotCount, slotSize);
            RingInitializer.Initialize(region.Address + PipeLayout.TxRingOffset, slotCount, slotSize);
            wakeup = WakeupSender.Create();
            return new PipeMemory(region, wakeup, Doorbell.Create());
        }
        catch
        {
            wakeup?.Dispose();
            region.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A socket's memory again, over a region its application kept mapped from one of its closed sockets
    /// (<see cref="Empty"/> emptied it then): the rings made new in the header page, a new wake-up and doorbell. The
    /// region has no descriptor left: the application maps it already.
    /// </summary>
    public static PipeMemory Reuse(SharedMemory region, int slotCount, int slotSize)
    {
        new Span<byte>(region.Address, PipeLayout.SocketHeaderBytes).Clear();
        RingInitializer.Initialize(region.Address + PipeLayout.RxRingOffset, slotCount, slotSize);
        RingInitializer.Initialize(region.Address + PipeLayout.TxRingOffset, slotCount, slotSize);
        var wakeup = WakeupSender.Create();
        try
        {
            return new PipeMemory(region, wakeup, Doorbell.Create());
        }
        catch
        {
            wakeup.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Frees what a closed socket's memory holds beyond its header page (slots, a TCP socket's connection table), in the
    /// daemon and in the application that keeps it mapped, before it is kept for that application's next bind.
    /// </summary>
    public static void Empty(SharedMemory region) => region.Discard(PipeLayout.SocketHeaderBytes);

    public void Dispose()
    {
        Wakeup.Dispose();
        Doorbell.Dispose();
        Region.Dispose();
    }
}
