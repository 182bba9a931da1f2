using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Shm;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Control;

/// <summary>
/// The control plane's record of one socket: who owns it, what it is bound to, its shared memory and eventfd,
/// and the <see cref="PipeSocket"/> the dataplane serves. Disposed only after the dataplane has let go of it.
/// </summary>
public sealed unsafe class NormanSocket : IDisposable
{
    public NormanSocket(long id, PeerIdentity owner, byte protocol, NetAddress localAddress, ushort localPort, int slotCount, int slotSize,
        int appId = -1, int cgroupId = -1)
    {
        Id = id;
        Owner = owner;
        SlotCount = slotCount;
        SlotSize = slotSize;
        Region = SharedMemory.Create($"norman:{IpProtocols.Name(protocol)}:{localPort}",
            PipeLayout.SocketRegionBytes(slotCount, slotSize, tcp: protocol == IpProtocols.Tcp));
        try
        {
            RingInitializer.Initialize(Region.Address + PipeLayout.RxRingOffset, slotCount, slotSize);
            RingInitializer.Initialize(Region.Address + PipeLayout.TxRingOffset(slotCount, slotSize), slotCount, slotSize);
            Wakeup = EventFd.Create();
        }
        catch
        {
            Region.Dispose();
            throw;
        }
        Pipe = new PipeSocket(id, protocol, localAddress, localPort, Region, Wakeup, slotCount, slotSize)
        {
            AppId = appId,
            OwnerUid = owner.Uid,
            OwnerGid = owner.Gid,
            OwnerPid = owner.Pid,
            CgroupId = cgroupId,
            OwnerName = System.Text.Encoding.ASCII.GetBytes(owner.ProcessName.Length > 16 ? owner.ProcessName[..16] : owner.ProcessName),
        };
    }

    public long Id { get; }
    public PeerIdentity Owner { get; }
    public int SlotCount { get; }
    public int SlotSize { get; }
    public SharedMemory Region { get; }
    public EventFd Wakeup { get; }
    public PipeSocket Pipe { get; }

    /// <summary>Bound address and port, as the control plane tracks them for bind conflicts.</summary>
    public NetAddress LocalAddress { get; set; }
    public ushort LocalPort => Pipe.LocalPort;
    public NetAddress RemoteAddress { get; set; }
    public ushort RemotePort { get; set; }

    /// <summary>Packets waiting in a ring, read straight from shared memory (for ss; racy by nature, as in the kernel).</summary>
    public int RxQueued => Queued(PipeLayout.RxRingOffset);
    public int TxQueued => Queued(PipeLayout.TxRingOffset(SlotCount, SlotSize));

    /// <summary>A TCP socket's connections as its application's stack last reported them; none for UDP.</summary>
    public List<ConnectionTable.Record> Connections() => Pipe.Protocol == IpProtocols.Tcp
        ? ConnectionTable.Read(Region.Address + ConnectionTable.Offset(SlotCount, SlotSize))
        : [];

    private int Queued(long ringOffset)
    {
        byte* ring = Region.Address + ringOffset;
        uint producer = Volatile.Read(ref *(uint*)(ring + PipeLayout.ProducerIndexOffset));
        uint consumer = Volatile.Read(ref *(uint*)(ring + PipeLayout.ConsumerIndexOffset));
        uint queued = producer - consumer;
        return queued > (uint)SlotCount ? 0 : (int)queued;
    }

    public void Dispose()
    {
        Wakeup.Dispose();
        Region.Dispose();
    }
}
