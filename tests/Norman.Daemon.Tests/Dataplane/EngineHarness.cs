using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>
/// An engine on a virtual wire, driven breath by breath on the test's thread, with sockets whose application side
/// the test plays through the same rings an application maps.
/// </summary>
public sealed class EngineHarness : IDisposable
{
    public static readonly NetAddress HostAddress = NetAddress.Parse("198.18.0.1");
    public static readonly NetAddress PeerAddress = NetAddress.Parse("198.18.0.2");
    private readonly List<NormanSocket> _sockets = new();

    /// <param name="lineRate">The virtual wire's rate; 0 for none.</param>
    /// <param name="slotCount">Slots in each socket's pipes.</param>
    /// <param name="wireQueueTicks">The virtual wire's queue time (how far ahead of the wire it takes frames); 0 for its default.</param>
    public EngineHarness(long lineRate = 0, int slotCount = 64, long wireQueueTicks = 0)
    {
        SlotCount = slotCount;
        var host = new HostInterface(MacAddress.Parse("02:00:00:00:00:01"), HostAddress, 24);
        Peer = new SimulatedPeer(MacAddress.Parse("02:00:00:00:00:02"), PeerAddress) { HostMac = host.Mac, HostAddress = HostAddress };
        Engine = new Engine(new VirtualPort(Peer, lineRate, wireQueueTicks), host);
    }

    public int SlotCount { get; }
    public Engine Engine { get; }
    public SimulatedPeer Peer { get; }

    public AppNames Names { get; } = new();

    /// <summary>The users' ready maps, for sockets bound with <c>ready</c>.</summary>
    public ReadyBitmaps ReadyMaps { get; } = new(new DescriptorReserve(int.MaxValue, 0));

    /// <param name="ready">Give the socket a bit in its user's ready map, which its <see cref="AppSide"/> marks as the client library does.</param>
    public AppSide Bind(ushort port, NetAddress? address = null, string app = "testapp", int uid = 1000, string cgroup = "/user.slice",
        byte protocol = IpProtocols.Udp, bool ready = false)
    {
        var owner = new PeerIdentity(Environment.ProcessId, uid, uid, app, app, cgroup);
        var (map, bit) = ready ? ReadyMaps.Take(uid) : (null, -1);
        var socket = new NormanSocket(_sockets.Count + 1, owner, protocol, address ?? NetAddress.FromV4(0), port, SlotCount,
            PipeLayout.DefaultSlotSize, Names.IdOf(app), Names.IdOf(AppNames.CgroupKey(cgroup)), ready: map, readyBit: bit);
        socket.LocalAddress = address ?? NetAddress.FromV4(0);
        _sockets.Add(socket);
        Engine.Post(new AddSocketCommand(socket.Pipe));
        Breathe();
        return new AppSide(socket, SlotCount);
    }

    public void Close(AppSide app)
    {
        var command = new RemoveSocketCommand(app.Socket.Pipe);
        Engine.Post(command);
        for (int i = 0; i < 100 && !command.Applied.IsCompleted; i++)
        {
            Breathe();
        }
        Assert.True(command.Applied.IsCompleted);
    }

    /// <summary>Runs breaths until one moves nothing (bounded).</summary>
    public void Breathe(int max = 64)
    {
        for (int i = 0; i < max; i++)
        {
            if (Engine.DoWork() == 0)
            {
                return;
            }
        }
    }

    /// <summary>Makes the peer known to the neighbour table, as if it had answered our ARP.</summary>
    public void ResolvePeer()
    {
        Engine.Post(new AddNeighbourCommand(PeerAddress, Peer.Mac));
        Breathe();
    }

    public void Dispose()
    {
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }
        ReadyMaps.Dispose();
    }
}

/// <summary>The application's end of a socket's pipes, as the client library maps them.</summary>
public sealed unsafe class AppSide
{
    public AppSide(NormanSocket socket, int slotCount)
    {
        Socket = socket;
        Rx = new RingConsumer(socket.Region.Address + PipeLayout.RxRingOffset, socket.Region.Address + PipeLayout.RxSlotsOffset, slotCount, PipeLayout.DefaultSlotSize);
        Tx = new RingProducer(socket.Region.Address + PipeLayout.TxRingOffset, socket.Region.Address + PipeLayout.TxSlotsOffset(slotCount, PipeLayout.DefaultSlotSize),
            slotCount, PipeLayout.DefaultSlotSize);
    }

    public NormanSocket Socket { get; }
    public RingConsumer Rx { get; }
    public RingProducer Tx { get; }
    public byte* RegionAddress => Socket.Region.Address;
    public long TxRingOffset => PipeLayout.TxRingOffset;
    public long TxSlotsOffset => PipeLayout.TxSlotsOffset(Socket.SlotCount, Socket.SlotSize);

    /// <summary>Writes and publishes a datagram with the given headers (forged ones included).</summary>
    public void Send(ReadOnlySpan<byte> payload, NetAddress source, ushort sourcePort, NetAddress destination, ushort destinationPort)
    {
        var slot = Tx.Claim();
        Assert.False(slot.IsEmpty, "TX pipe full");
        payload.CopyTo(slot[UdpPacketBuilder.HeaderLengthV4..]);
        Tx.Commit(UdpPacketBuilder.WriteHeaders(slot, source, sourcePort, destination, destinationPort, payload.Length));
        Tx.Publish();
        if (Socket.Pipe.Ready is { } ready)
        {
            ready.Map.Mark(Socket.Pipe.ReadyBit);
        }
    }

    /// <summary>Takes every datagram waiting in the RX pipe: (payload, source port).</summary>
    public List<(byte[] Payload, ushort SourcePort)> ReceiveAll()
    {
        var received = new List<(byte[], ushort)>();
        int available = Rx.Available();
        for (int i = 0; i < available; i++)
        {
            var packet = Rx.Peek();
            int ihl = (packet[0] & 0x0F) * 4;
            ushort sourcePort = (ushort)(packet[ihl] << 8 | packet[ihl + 1]);
            received.Add((packet[(ihl + 8)..].ToArray(), sourcePort));
            Rx.Advance();
        }
        Rx.Publish();
        return received;
    }
}
