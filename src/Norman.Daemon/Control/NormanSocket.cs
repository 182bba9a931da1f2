using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Shm;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Control;

/// <summary>
/// The control plane's record of one socket: who owns it, what it is bound to, its shared memory, wake-up and doorbell,
/// and the <see cref="PipeSocket"/> the dataplane serves. Disposed only after the dataplane has let go of it.
/// </summary>
/// <remarks>
/// Listings read the shared memory too (queues, a TCP socket's connections) on request threads that hold a snapshot
/// of the socket table, while the owner may close the socket at any moment. Those reads and the unmapping take
/// <see cref="_mapping"/>, so no reader can touch memory that is gone: once disposed, the socket reads as empty.
/// </remarks>
public sealed unsafe class NormanSocket : IDisposable
{
    private readonly object _mapping = new();
    private bool _disposed;

    /// <summary>
    /// A socket over <paramref name="memory"/>, made for this geometry and protocol (from the pool); null: made here. With
    /// <paramref name="ready"/>, its application marks <paramref name="readyBit"/> there when it publishes.
    /// </summary>
    public NormanSocket(long id, PeerIdentity owner, byte protocol, NetAddress localAddress, ushort localPort, int slotCount, int slotSize,
        int appId = -1, int cgroupId = -1, int executableId = -1, bool v6Only = false, PipeMemory? memory = null,
        ReadyBitmap? ready = null, int readyBit = -1, bool reusePort = false)
    {
        Id = id;
        Owner = owner;
        SlotCount = slotCount;
        SlotSize = slotSize;
        memory ??= PipeMemory.Create(slotCount, slotSize, tcp: protocol == IpProtocols.Tcp);
        Region = memory.Region;
        HeldDescriptors = Region.Fd >= 0 ? Descriptors : Descriptors - 1; // reused memory comes without its memfd
        Wakeup = memory.Wakeup;
        Doorbell = memory.Doorbell;
        Pipe = new PipeSocket(id, protocol, localAddress, localPort, Region, Wakeup, Doorbell, slotCount, slotSize)
        {
            AppId = appId,
            OwnerUid = owner.Uid,
            OwnerGid = owner.Gid,
            OwnerPid = owner.Pid,
            CgroupId = cgroupId,
            ExecutableId = executableId,
            V6Only = v6Only,
            Ready = ready,
            ReusePort = reusePort,
            ReadyBit = ready is null ? -1 : readyBit,
            OwnerName = System.Text.Encoding.ASCII.GetBytes(owner.ProcessName.Length > 16 ? owner.ProcessName[..16] : owner.ProcessName),
        };
    }

    /// <summary>What a socket holds in the daemon until its bind is answered: its memfd, its wake-up's eventfd and epoll, and its doorbell.</summary>
    public const int Descriptors = PipeMemory.Descriptors;

    /// <summary>What it holds once the application has its ends (<see cref="CloseApplicationEnds"/>): the eventfd it signals and the doorbell it watches.</summary>
    public const int DescriptorsAfterAnswer = 2;

    /// <summary>The descriptors it holds now.</summary>
    public int HeldDescriptors { get; private set; }

    /// <summary>
    /// After the bind's answer went out: closes the daemon's copies of what only the application uses (the memfd, which
    /// stays mapped, and the wake-up's epoll); returns how many it closed (0 when done before, or the socket is gone).
    /// </summary>
    public int CloseApplicationEnds()
    {
        lock (_mapping)
        {
            if (_disposed || HeldDescriptors == DescriptorsAfterAnswer)
            {
                return 0;
            }
            int closed = HeldDescriptors - DescriptorsAfterAnswer;
            Region.CloseDescriptor();
            Wakeup.CloseApplicationEnd();
            HeldDescriptors = DescriptorsAfterAnswer;
            return closed;
        }
    }

    public long Id { get; }
    /// <summary>The closed socket whose kept memory this one was given (<see cref="PipeMemory.Reuse"/>), if it was.</summary>
    public long? ReusedMemory { get; set; }
    public PeerIdentity Owner { get; }
    public int SlotCount { get; }
    public int SlotSize { get; }
    public SharedMemory Region { get; }
    /// <summary>How the dataplane wakes the application; its epoll descriptor goes with the bind's answer.</summary>
    public WakeupSender Wakeup { get; }
    /// <summary>How the application wakes the dataplane; passed with the bind's answer.</summary>
    public Doorbell Doorbell { get; }
    public PipeSocket Pipe { get; }

    /// <summary>Bound address and port, as the control plane tracks them for bind conflicts.</summary>
    public NetAddress LocalAddress { get; set; }
    /// <summary>SO_REUSEADDR at bind: a UDP socket that may share its port with another that asked too (SocketTable.MayShare).</summary>
    public bool ReuseAddress { get; set; }
    public ushort LocalPort => Pipe.LocalPort;
    public NetAddress RemoteAddress { get; set; }
    public ushort RemotePort { get; set; }
    /// <summary>A TCP listener its process passes to the program it execs (ControlPlane.Exec.cs): kept when its connection closes.</summary>
    public bool KeptAcrossExec { get; set; }
    /// <summary>One process joins this listener at a time (ControlPlane.Inherit.cs), each waiting for the queue it hands over.</summary>
    public SemaphoreSlim JoinGate { get; } = new(1, 1);
    /// <summary>The joiner waiting for this listener's queue-handover, while one does.</summary>
    public TaskCompletionSource<List<Norman.Core.Protocol.HandedOverConnection>?>? QueueWanted { get; set; }

    /// <summary>Tells the listener's stack that a process joined it (<see cref="PipeLayout.JoinedOffset"/>); false once disposed.</summary>
    public bool AddJoined()
    {
        lock (_mapping)
        {
            if (_disposed)
            {
                return false;
            }
            Interlocked.Increment(ref *(int*)(Region.Address + PipeLayout.JoinedOffset));
            return true;
        }
    }

    /// <summary>The connections its program had made and not accepted when it exec'd, for the next program (ControlPlane.Exec.cs).</summary>
    public List<Norman.Core.Protocol.HandedOverConnection>? HandedOver { get; set; }

    /// <summary>Packets waiting in a ring, read straight from shared memory (for ss; racy by nature, as in the kernel).</summary>
    public int RxQueued => Queued(PipeLayout.RxRingOffset);
    public int TxQueued => Queued(PipeLayout.TxRingOffset);

    /// <summary>
    /// A TCP socket's connections as its application's stack last reported them, the implausible ones left out (see
    /// <see cref="ConnectionTable.Read"/>); none for UDP, or once the socket is closed.
    /// </summary>
    public List<ConnectionTable.Record> Connections()
    {
        if (Pipe.Protocol != IpProtocols.Tcp)
        {
            return [];
        }
        lock (_mapping)
        {
            return _disposed ? [] : ConnectionTable.Read(Region.Address + ConnectionTable.Offset(SlotCount, SlotSize));
        }
    }

    /// <summary>A TCP socket's totals as its application last wrote them (challenge ACKs sent, resets ignored); zeros for UDP or once closed.</summary>
    public (long ChallengeAcks, long ResetsIgnored) TcpTotals()
    {
        if (Pipe.Protocol != IpProtocols.Tcp)
        {
            return (0, 0);
        }
        lock (_mapping)
        {
            if (_disposed)
            {
                return (0, 0);
            }
            var (challenges, resets) = ConnectionTable.ReadTotals(Region.Address + ConnectionTable.Offset(SlotCount, SlotSize));
            return ((long)Math.Min(challenges, long.MaxValue), (long)Math.Min(resets, long.MaxValue));
        }
    }

    private int Queued(long ringOffset)
    {
        lock (_mapping)
        {
            if (_disposed)
            {
                return 0;
            }
            byte* ring = Region.Address + ringOffset;
            uint producer = Volatile.Read(ref *(uint*)(ring + PipeLayout.ProducerIndexOffset));
            uint consumer = Volatile.Read(ref *(uint*)(ring + PipeLayout.ConsumerIndexOffset));
            uint queued = producer - consumer;
            return queued > (uint)SlotCount ? 0 : (int)queued;
        }
    }

    /// <summary>
    /// A listener's descriptor as its program holds it (the application's readiness descriptor, passed at listen), or
    /// -1: a process that inherited it (fork, exec) proves with its own copy that it holds the listener (inherit).
    /// </summary>
    public int Holder { get; private set; } = -1;

    /// <summary>Keeps <paramref name="fd"/> as <see cref="Holder"/>, closing an earlier one; false (and closed) when the socket is gone.</summary>
    public bool NameHolder(int fd)
    {
        lock (_mapping)
        {
            if (_disposed)
            {
                Libc.Close(fd);
                return false;
            }
            if (Holder >= 0)
            {
                Libc.Close(Holder);
            }
            Holder = fd;
            return true;
        }
    }

    /// <summary>
    /// Connections this listener's program closed after its process forked (a child may hold them still), each with the
    /// descriptor the program held it by: a child proves with its copy which one it takes up (claim-connection).
    /// </summary>
    private readonly List<(int Fd, NetAddress Remote, ushort Port)> _connectionHolders = new();

    /// <summary>The most connections a listener keeps named for its children at once.</summary>
    public const int MaxConnectionHolders = 64;

    public int ConnectionHolderCount
    {
        get
        {
            lock (_mapping)
            {
                return _connectionHolders.Count;
            }
        }
    }

    /// <summary>
    /// Keeps <paramref name="fd"/> as the descriptor of the connection to remote:port (in place of one named before for
    /// it: <paramref name="replaced"/>); false (and closed) when the socket is gone or holds the most.
    /// </summary>
    public bool NameConnectionHolder(int fd, NetAddress remote, ushort port, out bool replaced)
    {
        lock (_mapping)
        {
            int before = _connectionHolders.FindIndex(holder => holder.Remote == remote && holder.Port == port);
            replaced = before >= 0;
            if (_disposed || (!replaced && _connectionHolders.Count >= MaxConnectionHolders))
            {
                Libc.Close(fd);
                return false;
            }
            if (replaced)
            {
                Libc.Close(_connectionHolders[before].Fd);
                _connectionHolders.RemoveAt(before);
            }
            _connectionHolders.Add((fd, remote, port));
            return true;
        }
    }

    /// <summary>The connection whose named descriptor is the same open file as <paramref name="proof"/>, no longer named (its descriptor closed); null if none.</summary>
    public (NetAddress Remote, ushort Port)? TakeConnectionHolder(int proof)
    {
        lock (_mapping)
        {
            int at = _connectionHolders.FindIndex(holder => Libc.SameFile(holder.Fd, proof));
            if (at < 0)
            {
                return null;
            }
            var (fd, remote, port) = _connectionHolders[at];
            _connectionHolders.RemoveAt(at);
            Libc.Close(fd);
            return (remote, port);
        }
    }

    /// <summary>How many named connections' descriptors the socket closed when it was disposed (for its user's count of the daemon's descriptors).</summary>
    public int ConnectionHoldersClosed { get; private set; }

    /// <summary>The child's claim waiting for this listener's connection-handover, while one does (under <see cref="JoinGate"/>).</summary>
    public ConnectionClaim? Claim { get; set; }

    /// <summary>
    /// Asks the listener's stack for its connection to remote:port (<see cref="PipeLayout.ConnectionWantedOffset"/>),
    /// the claim made <see cref="Claim"/> before the ask is raised (the stack may answer at once); null once disposed.
    /// </summary>
    public ConnectionClaim? AskForConnection(NetAddress remote, ushort port)
    {
        lock (_mapping)
        {
            if (_disposed)
            {
                return null;
            }
            byte* header = Region.Address;
            *(uint*)(header + PipeLayout.ConnectionWantedPortOffset) = port;
            remote.WriteV6(new Span<byte>(header + PipeLayout.ConnectionWantedAddressOffset, 16));
            int* asked = (int*)(header + PipeLayout.ConnectionWantedOffset);
            var claim = new ConnectionClaim(unchecked(Volatile.Read(ref *asked) + 1));
            Claim = claim;
            Volatile.Write(ref *asked, claim.Sequence);
            return claim;
        }
    }

    public void Dispose() => Release(keepRegion: false);

    /// <summary>
    /// Disposes the socket but not its memory, which is returned, emptied (<see cref="PipeMemory.Empty"/>), for its
    /// application's next bind on the same connection; null if the socket was disposed already.
    /// </summary>
    public SharedMemory? DisposeKeepingMemory() => Release(keepRegion: true) ? Region : null;

    private bool Release(bool keepRegion)
    {
        lock (_mapping)
        {
            if (_disposed)
            {
                return false;
            }
            _disposed = true;
            if (Holder >= 0)
            {
                Libc.Close(Holder);
            }
            _connectionHolders.ForEach(holder => Libc.Close(holder.Fd));
            ConnectionHoldersClosed = _connectionHolders.Count;
            _connectionHolders.Clear();
            Wakeup.Dispose();
            Doorbell.Dispose();
            if (keepRegion)
            {
                Region.CloseDescriptor();
                PipeMemory.Empty(Region);
            }
            else
            {
                Region.Dispose();
            }
            Pipe.Ready?.Release(Pipe.ReadyBit); // the dataplane has let go of the socket: the bit may serve another
            return true;
        }
    }
}
