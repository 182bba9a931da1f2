using System.Net;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Client;

/// <summary>
/// A bound socket's pipes as the daemon granted them over a control connection: the shared memory, the two rings
/// (RX to read, TX to write), the wake-up the daemon signals and the doorbell that wakes the dataplane, and what the socket is bound to.
/// </summary>
internal sealed unsafe class SocketPipes : IDisposable
{
    /// <summary>This user's ready map and the socket's bit in it, marked after each publish; null: the daemon gave none.</summary>
    private ReadyMapping? _ready;
    private readonly int _readyBit;

    private SocketPipes(SharedMemory region, WakeupReceiver wakeup, Doorbell doorbell, SocketGrant grant, ReadyMapping? ready)
    {
        _ready = ready;
        _readyBit = grant.ReadyBit ?? -1;
        Region = region;
        Wakeup = wakeup;
        Doorbell = doorbell;
        Rx = new RingConsumer(region.Address + PipeLayout.RxRingOffset, region.Address + PipeLayout.RxSlotsOffset, grant.SlotCount, grant.SlotSize);
        Tx = new RingProducer(region.Address + PipeLayout.TxRingOffset, region.Address + PipeLayout.TxSlotsOffset(grant.SlotCount, grant.SlotSize),
            grant.SlotCount, grant.SlotSize);
        SocketId = grant.SocketId;
        Source = grant.SourceAddress.Length == 0 ? null : NetAddress.Parse(grant.SourceAddress);
        Sources6 = [.. (grant.SourceAddresses6 ?? []).Select(ParsePrefix)];
        LocalEndPoint = new IPEndPoint(IPAddress.Parse(grant.LocalAddress), grant.LocalPort);
        long table = ConnectionTable.Offset(grant.SlotCount, grant.SlotSize);
        ConnectionTableAddress = grant.RegionBytes >= table + ConnectionTable.Bytes ? region.Address + table : null;
    }

    /// <summary>Where a TCP socket reports its connections for `norman ss`; null for UDP.</summary>
    public byte* ConnectionTableAddress { get; }

    public SharedMemory Region { get; }
    /// <summary>Readable when the daemon wakes a reader asleep on the RX pipe.</summary>
    public WakeupReceiver Wakeup { get; }
    /// <summary>Rung to wake the dataplane when it said it sleeps (<see cref="PublishTx"/>).</summary>
    public Doorbell Doorbell { get; }
    public RingConsumer Rx { get; }
    public RingProducer Tx { get; }
    public long SocketId { get; }
    /// <summary>The address IPv4 packets are sent from: the bound one, or the host's for a wildcard bind; null when the socket sends no IPv4.</summary>
    public NetAddress? Source { get; }
    /// <summary>
    /// The IPv6 addresses packets may be sent from, with their prefixes, the host's main one first; empty when the
    /// socket sends no IPv6 (bound to IPv4, or the host has no IPv6 address). <see cref="SourceFor"/> chooses.
    /// </summary>
    public (NetAddress Address, int PrefixLength)[] Sources6 { get; }

    private static (NetAddress, int) ParsePrefix(string text)
    {
        int slash = text.IndexOf('/');
        return slash < 0 || !int.TryParse(text.AsSpan(slash + 1), out int prefix) || prefix is < 0 or > 128
            ? throw new NormanException("EPROTO", $"The daemon granted an IPv6 source '{text}' that is not an address with a prefix: a daemon of another release?")
            : (NetAddress.Parse(text[..slash]), prefix);
    }

    /// <summary>The source for a packet to <paramref name="destination"/>; EAFNOSUPPORT when this socket cannot send that family.</summary>
    public NetAddress SourceFor(NetAddress destination) =>
        (destination.IsV4 ? Source : SourceChoice6.Choose(Sources6, destination)) ?? throw new NormanException("EAFNOSUPPORT",
            $"This socket, bound to {LocalEndPoint}, cannot send to {destination}: " + (destination.IsV4
                ? "it sends IPv6 only (bound to an IPv6 address, or v6-only). Bind to :: or 0.0.0.0 to send IPv4."
                : LocalEndPoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
                    ? "it is an IPv4 socket. Bind to :: for both families."
                    : "the Norman host has no IPv6 address (the daemon's --address6)."));
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Binds a socket of <paramref name="protocol"/> ("udp" or "tcp") and maps its pipes; null slots: the daemon's default (--slots).</summary>
    public static SocketPipes Bind(ControlChannel control, string protocol, IPEndPoint endPoint, int? slotCount, bool v6Only = false, bool reuseAddress = false,
        bool reusePort = false)
    {
        var fds = new List<int>();
        ControlResponse response;
        try
        {
            response = control.Call(new ControlRequest
            {
                Op = ControlProtocol.Ops.Bind,
                Protocol = protocol,
                Address = endPoint.Address.ToString(),
                Port = endPoint.Port,
                SlotCount = slotCount,
                V6Only = v6Only ? true : null,
                ReuseAddress = reuseAddress ? true : null,
                ReusePort = reusePort ? true : null,
                KeptMemory = control.KeptMemory(),
            }, fds);
        }
        catch (NormanException)
        {
            control.ForgetKept(); // the daemon let go of any kept memory it took for this bind
            throw;
        }
        return Granted(control, response, fds);
    }

    /// <summary>
    /// Joins a TCP listener this process inherited (a forked worker, a program exec'd): <paramref name="proof"/>, a
    /// descriptor of the listener (its doorbell, or the one its program holds it by), proves it holds it; the daemon answers with a listener of this process's own on
    /// the same port, in a group with the inherited one, which takes no new connections from then on.
    /// </summary>
    public static SocketPipes Inherit(ControlChannel control, int proof, out List<HandedOverConnection>? handedOver)
    {
        var fds = new List<int>();
        var response = control.Call(new ControlRequest { Op = ControlProtocol.Ops.Inherit }, fds, sentFds: [proof]);
        handedOver = response.HandedOver;
        return Granted(control, response, fds);
    }

    /// <summary>
    /// A socket of this process's own for a connection it inherited across fork (<paramref name="proof"/>: its descriptor),
    /// on its listener's port, with the connection as the listener's stack wrote it down.
    /// </summary>
    public static SocketPipes Claim(ControlChannel control, int proof, out HandedOverConnection handedOver)
    {
        var fds = new List<int>();
        var response = control.Call(new ControlRequest { Op = ControlProtocol.Ops.ClaimConnection }, fds, sentFds: [proof]);
        var pipes = Granted(control, response, fds);
        if (response.HandedOver is not [var connection])
        {
            pipes.Close(control);
            throw new NormanException("EPROTO", "The daemon granted a socket for an inherited connection without the connection: a daemon of another release?");
        }
        handedOver = connection;
        return pipes;
    }

    /// <summary>Maps what a bind's (or an inherit's) answer grants and checks it against what the answer says.</summary>
    private static SocketPipes Granted(ControlChannel control, ControlResponse response, List<int> fds)
    {
        var grant = response.Socket!;
        // Reused memory comes without its memfd: the rest are one place earlier.
        var kept = grant.ReusedMemory is { } reused ? control.TakeKept(reused) : null;
        int first = grant.ReusedMemory is null ? 1 : 0;
        int expected = first + (grant.ReadyBit is null ? 2 : 3);
        if (fds.Count != expected || grant.ReadyBit is < 0 or >= ReadyMap.Bits || (grant.ReusedMemory is not null && kept is null)
            || (kept is not null && kept.Length != grant.RegionBytes))
        {
            FdPassing.CloseAll(fds);
            kept?.Dispose();
            control.CloseSocket(grant.SocketId); // the connection outlives this socket: the daemon must hear it is gone
            throw new NormanException("EPROTO", $"The daemon sent {fds.Count} descriptors with the bind, not {expected}, ready bit " +
                $"{grant.ReadyBit}, or memory {grant.ReusedMemory} this process does not keep: a daemon of another release?");
        }
        SharedMemory region;
        if (kept is not null)
        {
            region = kept;
        }
        else
        {
            region = SharedMemory.Map(fds[0], grant.RegionBytes);
            region.CloseDescriptor(); // mapped: the memory needs no descriptor, and a process's sockets should not cost three each
        }
        var wakeup = WakeupReceiver.Adopt(fds[first]);
        var doorbell = Doorbell.Adopt(fds[first + 1]);
        var ready = grant.ReadyBit is null ? null : control.AdoptReadyMap(fds[first + 2], grant.ReadyMapId ?? 0);
        byte* rxRing = region.Address + PipeLayout.RxRingOffset;
        byte* txRing = region.Address + PipeLayout.TxRingOffset;
        if (!RingInitializer.Matches(rxRing, grant.SlotCount, grant.SlotSize) || !RingInitializer.Matches(txRing, grant.SlotCount, grant.SlotSize))
        {
            wakeup.Dispose();
            doorbell.Dispose();
            region.Dispose();
            ready?.Release();
            control.CloseSocket(grant.SocketId);
            throw new NormanException("EPROTO", "The pipe memory does not match the daemon's description: a daemon of another release?");
        }
        return new SocketPipes(region, wakeup, doorbell, grant, ready);
    }

    /// <summary>
    /// Publishes what was written into the TX pipe, marks the socket's bit in the ready map (so the dataplane looks at
    /// this pipe without sweeping the others), and rings the dataplane if it said it was going to sleep (the map's
    /// asleep flag; without a map, the TX ring's needs-wakeup flag): a busy dataplane costs the application no system call.
    /// </summary>
    public void PublishTx()
    {
        if (!Tx.Publish())
        {
            return;
        }
        if (_ready is { } ready ? ready.Map.Mark(_readyBit) : Tx.TakeWakeupRequest())
        {
            Doorbell.Ring();
            // The scheduler may have woken the dataplane onto this very CPU (on a machine that shows it no shared
            // cache it often does), where it would wait out this thread's time slice: let it run first.
            Thread.Yield();
        }
    }

    /// <summary>Fixes the socket's remote end at the daemon: only its packets come in.</summary>
    public void Connect(ControlChannel control, IPEndPoint remote) => control.Call(ConnectRequest(remote));

    /// <summary>
    /// <see cref="Connect"/> without waiting for the daemon, for a TCP client: its peer's answer reaches the socket by
    /// its port whether or not the peer is fixed yet, and the daemon fixes it before this process's next request.
    /// </summary>
    public void ConnectWithoutWaiting(ControlChannel control, IPEndPoint remote) => control.Post(ConnectRequest(remote));

    private ControlRequest ConnectRequest(IPEndPoint remote) => new()
    {
        Op = ControlProtocol.Ops.Connect,
        SocketId = SocketId,
        RemoteAddress = remote.Address.ToString(),
        RemotePort = remote.Port,
    };

    /// <summary>
    /// Closes the socket: the daemon is told over <paramref name="control"/> (the process's shared connection, which
    /// outlives it). The memory stays mapped for this process's next bind over that connection when it keeps few
    /// enough (<see cref="ControlChannel.TryKeep"/>), and is unmapped here otherwise.
    /// </summary>
    public void Close(ControlChannel control)
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }
        bool keep = control.TryKeep(SocketId, Region);
        control.CloseSocket(SocketId, keepMemory: keep);
        Release(unmap: !keep);
    }

    /// <summary>Unmaps the pipes without telling the daemon (it is gone, and released the socket with the connection).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            Release(unmap: true);
        }
    }

    /// <summary>1 once closed or disposed: the memory may be kept for another socket by then, and must not be unmapped twice.</summary>
    private int _released;

    private void Release(bool unmap)
    {
        WakeupReactor.ForgetIfStarted(Wakeup.Fd);
        Wakeup.Dispose();
        Doorbell.Dispose();
        if (unmap)
        {
            Region.Dispose();
        }
        Interlocked.Exchange(ref _ready, null)?.Release();
    }
}
