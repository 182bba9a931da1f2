using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// The dataplane's view of one socket: its flow key, its two rings in the application's shared memory, the
/// wake-up that rouses the application, the doorbell it rings when the dataplane sleeps, and its counters. Created by the control plane, then owned by the
/// dataplane thread from the moment it is added until it is removed.
/// </summary>
public sealed unsafe class PipeSocket
{
    public PipeSocket(long id, byte protocol, NetAddress localAddress, ushort localPort, SharedMemory region, WakeupSender wakeup, Doorbell doorbell,
        int slotCount, int slotSize)
    {
        Id = id;
        Protocol = protocol;
        LocalAddress = localAddress;
        LocalPort = localPort;
        Rx = new RingProducer(region.Address + PipeLayout.RxRingOffset, region.Address + PipeLayout.RxSlotsOffset, slotCount, slotSize);
        Tx = new RingConsumer(region.Address + PipeLayout.TxRingOffset, region.Address + PipeLayout.TxSlotsOffset(slotCount, slotSize), slotCount, slotSize);
        Wakeup = wakeup;
        Doorbell = doorbell;
    }

    public long Id { get; }

    /// <summary>Who owns the socket, for `app`, `uid`, `gid`, `pid`, `cgroup` and `exe` matches; set before the dataplane sees it.</summary>
    public int AppId { get; init; } = -1;
    public int OwnerUid { get; init; } = -1;
    public int OwnerGid { get; init; } = -1;
    public int OwnerPid { get; init; } = -1;
    public int CgroupId { get; init; } = -1;
    /// <summary>The owner's executable (its path's number), for `exe PATH` matches.</summary>
    public int ExecutableId { get; init; } = -1;
    /// <summary>The owner's process name as ASCII bytes (at most 16), for capture records.</summary>
    public byte[] OwnerName { get; init; } = [];
    public byte Protocol { get; }
    public NetAddress LocalAddress { get; internal set; }
    public ushort LocalPort { get; }
    /// <summary>Set by connect; changed only on the dataplane thread.</summary>
    public NetAddress RemoteAddress { get; internal set; }
    public ushort RemotePort { get; internal set; }
    public bool IsConnected => RemotePort != 0;

    /// <summary>IPV6_V6ONLY: a socket bound to :: that takes IPv6 only (off by default, as Linux's bindv6only=0).</summary>
    public bool V6Only { get; init; }

    /// <summary>SO_REUSEPORT at bind: a UDP socket in a group of its user's that share one address and port.</summary>
    public bool ReusePort { get; init; }

    /// <summary>Bound to :: and taking IPv4 too (as v4-mapped addresses): a dual-stack socket.</summary>
    public bool DualStack => LocalAddress == HostInterface.AnyV6 && !V6Only;

    /// <summary>
    /// The source address this socket's packets to <paramref name="destination"/> leave from: its own, or on a wildcard
    /// the host's for that destination (<see cref="HostInterface.SourceFor"/>); null when it may not send that family at
    /// all (an IPv4 socket's IPv6, a v6-only socket's IPv4, IPv6 on a host without an IPv6 address).
    /// </summary>
    public NetAddress? SourceFor(NetAddress destination, HostInterface host)
    {
        if (!LocalAddress.IsUnspecified)
        {
            return LocalAddress.IsV4 == destination.IsV4 ? LocalAddress : null;
        }
        if (LocalAddress.IsV4)
        {
            return destination.IsV4 ? host.Address : null;
        }
        return destination.IsV4 ? (V6Only ? null : host.Address) : host.SourceFor(destination);
    }

    /// <summary>The IPv6 sources this socket may choose among, with their prefixes: its own address, or on :: the host's; none when it sends no IPv6.</summary>
    public IReadOnlyList<(NetAddress Address, int PrefixLength)> Sources6(HostInterface host) =>
        LocalAddress.IsV4 ? [] : LocalAddress.IsUnspecified ? host.Prefixes6 : [(LocalAddress, 128)];

    /// <summary>
    /// Whether this socket may send from <paramref name="source"/> (anti-spoofing): its own address, or on a wildcard one
    /// of the host's addresses of a family it sends — any of them, as Linux lets a wildcard socket choose (IPV6_PKTINFO).
    /// </summary>
    public bool MaySendFrom(NetAddress source, HostInterface host)
    {
        if (!LocalAddress.IsUnspecified)
        {
            return source == LocalAddress;
        }
        if (source.IsV4)
        {
            return (LocalAddress.IsV4 || !V6Only) && source == host.Address;
        }
        return !LocalAddress.IsV4 && host.IsOurs(source);
    }

    public RingProducer Rx { get; }
    public RingConsumer Tx { get; }
    public WakeupSender Wakeup { get; }
    /// <summary>What the application rings when the dataplane sleeps; watched, never read.</summary>
    public Doorbell Doorbell { get; }
    public SocketCounters Counters { get; } = new();

    /// <summary>Its user's ready map, where its application marks <see cref="ReadyBit"/> after publishing; null: none (found by the sweep).</summary>
    public ReadyBitmap? Ready { get; init; }
    public int ReadyBit { get; init; } = -1;

    /// <summary>The slot in the engine's socket array; the value stored in the flow table.</summary>
    internal int Slot { get; set; } = -1;
    /// <summary>Its place in the dense list of active sockets (the TX scheduler's walk); -1 when not served.</summary>
    internal int ActiveIndex { get; set; } = -1;
    /// <summary>The batch in which this socket last received, so its RX ring is published once per batch.</summary>
    internal long TouchedInBatch { get; set; } = -1;

    /// <summary>
    /// The QoS class chosen for what the socket sends, and for what it receives: the same but for a `dscp` match,
    /// which looks at the packets of that direction.
    /// </summary>
    internal Qos.QosChoice SendingQos = Qos.QosChoice.None;
    internal Qos.QosChoice ReceivingQos = Qos.QosChoice.None;
    /// <summary>
    /// The DSCP of the packet at the head of the TX pipe, read in place (only to choose a QoS class: what leaves is
    /// checked after the copy); 0 when it is not a well-formed IPv4 or IPv6 header. Only for a pipe known to hold a packet.
    /// </summary>
    public byte HeadDscp()
    {
        var packet = Tx.Peek();
        return packet.Length < 2 ? (byte)0
            : (packet[0] >> 4) == 4 ? (byte)(packet[1] >> 2)
            : (packet[0] >> 4) == 6 ? (byte)((((packet[0] & 0x0F) << 4) | (packet[1] >> 4)) >> 2)
            : (byte)0;
    }

    public FlowKey Key => IsConnected
        ? new FlowKey(Protocol, LocalAddress, LocalPort, RemoteAddress, RemotePort)
        : FlowKey.Listener(Protocol, LocalAddress, LocalPort);
}
