using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Tests.Dataplane.Stages;

/// <summary>
/// What the engine gives its stages (counters, host, sockets and their lookup, neighbours, the host's replies), without
/// the engine: a stage test builds one, writes frames into a <see cref="PacketBatch"/>, runs one stage and reads what it
/// marked, counted, queued or wrote.
/// </summary>
public sealed class StageRig : IDisposable
{
    public static readonly MacAddress HostMac = MacAddress.Parse("02:00:00:00:00:01");
    public static readonly MacAddress PeerMac = MacAddress.Parse("02:00:00:00:00:02");
    public static readonly NetAddress HostAddress = NetAddress.Parse("198.18.0.1");
    public static readonly NetAddress PeerAddress = NetAddress.Parse("198.18.0.2");
    public static readonly NetAddress OffLinkAddress = NetAddress.Parse("203.0.113.9");
    public static readonly NetAddress HostAddress6 = NetAddress.Parse("fd66::1");
    public static readonly NetAddress PeerAddress6 = NetAddress.Parse("fd66::2");
    private readonly List<NormanSocket> _sockets = new();

    /// <param name="names">The names a store compiled its rules against, when the test matches by application.</param>
    /// <param name="ipv6">Whether the host has an IPv6 address (<see cref="HostAddress6"/>/64) too.</param>
    /// <param name="moreAddresses6">IPv6 addresses beyond the first.</param>
    /// <param name="acceptRouterAdvertisements">Whether the host takes its IPv6 default route from router advertisements.</param>
    public StageRig(NetAddress? gateway = null, AppNames? names = null, bool ipv6 = false, (NetAddress, int)[]? moreAddresses6 = null,
        bool acceptRouterAdvertisements = false)
    {
        Names = names ?? new AppNames();
        Host = new HostInterface(HostMac, HostAddress, 24, gateway, ipv6 ? HostAddress6 : null)
        {
            MoreAddresses6 = moreAddresses6 ?? [],
            AcceptsRouterAdvertisements = acceptRouterAdvertisements,
        };
        Neighbours = new NeighbourTable(Stopwatch.Frequency);
        Replies = new HostReplies(Counters, Host, Stopwatch.Frequency);
    }

    public HostInterface Host { get; }
    public DataplaneCounters Counters { get; } = new();
    public SocketSet Sockets { get; } = new();
    public SocketLookup Lookup { get; } = new(64);
    public NeighbourTable Neighbours { get; }
    public HostReplies Replies { get; }
    public AppNames Names { get; }
    public PacketBatch Batch { get; } = new();
    public long Now { get; set; } = Stopwatch.GetTimestamp();

    /// <summary>A socket as the control plane hands it to the dataplane (in the set and the lookup), with its application's end.</summary>
    /// <param name="local">The address bound to (the host's IPv4 one by default; a wildcard, or the IPv6 one).</param>
    public AppSide Bind(ushort port, byte protocol = IpProtocols.Udp, int slotCount = 8, NetAddress? remote = null, ushort remotePort = 0,
        string app = "stageapp", NetAddress? local = null, bool v6Only = false)
    {
        var owner = new PeerIdentity(Environment.ProcessId, 1000, 1000, app, app, "/user.slice");
        var socket = new NormanSocket(_sockets.Count + 1, owner, protocol, local ?? HostAddress, port, slotCount, PipeLayout.DefaultSlotSize,
            Names.IdOf(app), Names.IdOf(AppNames.CgroupKey("/user.slice")), v6Only: v6Only);
        socket.LocalAddress = local ?? HostAddress;
        if (remote is { } address)
        {
            socket.Pipe.RemoteAddress = address;
            socket.Pipe.RemotePort = remotePort;
        }
        _sockets.Add(socket);
        Sockets.Add(socket.Pipe);
        Lookup.Add(socket.Pipe.Key, socket.Pipe.Slot, socket.Pipe.DualStack);
        return new AppSide(socket, slotCount);
    }

    /// <summary>Appends a frame as a port would (Ethernet header included) and returns its index.</summary>
    public int Receive(ReadOnlySpan<byte> frame)
    {
        frame.CopyTo(Batch.NextBuffer());
        Batch.Append(frame.Length);
        return Batch.Count - 1;
    }

    /// <summary>Appends a frame and parses it, as the parse stage leaves it for the stages after it.</summary>
    public int ReceiveParsed(ReadOnlySpan<byte> frame)
    {
        int index = Receive(frame);
        Assert.Equal(ParseError.None, PacketParser.Parse(Batch.Frame(index), out Batch.Parsed(index)));
        return index;
    }

    public static byte[] Udp(NetAddress source, ushort sourcePort, NetAddress destination, ushort destinationPort, int payloadLength = 16,
        MacAddress? to = null)
    {
        var frame = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + payloadLength];
        EthernetHeader.Write(frame, to ?? HostMac, PeerMac, EtherTypes.IPv4);
        frame.AsSpan(EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4).Fill(0x5A);
        UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), source, sourcePort, destination, destinationPort, payloadLength);
        return frame;
    }

    /// <summary>A UDP datagram over IPv6 (no extension headers), as a port receives it.</summary>
    public static byte[] Udp6(NetAddress source, ushort sourcePort, NetAddress destination, ushort destinationPort, int payloadLength = 16)
    {
        var frame = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV6 + payloadLength];
        EthernetHeader.Write(frame, HostMac, PeerMac, EtherTypes.IPv6);
        frame.AsSpan(EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV6).Fill(0x5A);
        UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), source, sourcePort, destination, destinationPort, payloadLength);
        return frame;
    }

    public static byte[] UdpFromPeer(ushort destinationPort, int payloadLength = 16) =>
        Udp(PeerAddress, 40000, HostAddress, destinationPort, payloadLength);

    public static byte[] TcpFromPeer(ushort destinationPort, byte flags)
    {
        var frame = new byte[EthernetHeader.Size + TcpSegmentBuilder.HeaderLength];
        EthernetHeader.Write(frame, HostMac, PeerMac, EtherTypes.IPv4);
        TcpSegmentBuilder.Write(frame.AsSpan(EthernetHeader.Size), PeerAddress, 40000, HostAddress, destinationPort,
            new TcpSegmentFields(1000, 0, flags, 1024), [], 0, identification: 1);
        return frame;
    }

    public static byte[] ArpRequestFromPeer(NetAddress target)
    {
        var frame = new byte[64];
        int length = ControlFrames.ArpRequest(frame, PeerMac, PeerAddress, target);
        return frame[..length];
    }

    public static byte[] PingFromPeer()
    {
        const int icmpLength = 16;
        var frame = new byte[EthernetHeader.Size + Ipv4Header.Size + icmpLength];
        EthernetHeader.Write(frame, HostMac, PeerMac, EtherTypes.IPv4);
        var ip = frame.AsSpan(EthernetHeader.Size);
        Ipv4Header.Write(ip, IpProtocols.Icmp, PeerAddress.V4, HostAddress.V4, Ipv4Header.Size + icmpLength, 7);
        var icmp = ip[Ipv4Header.Size..];
        icmp[0] = IcmpHeader.EchoRequestV4;
        icmp[4..].Fill(0x11);
        ushort checksum = InternetChecksum.Compute(icmp);
        icmp[2] = (byte)(checksum >> 8);
        icmp[3] = (byte)checksum;
        return frame;
    }

    /// <summary>The frames the host has queued to send, parsed.</summary>
    public List<(byte[] Frame, ParsedPacket Packet)> Outbox()
    {
        var frames = new List<(byte[], ParsedPacket)>();
        while (Replies.Outbox.Count > 0)
        {
            var frame = Replies.Outbox.Peek().ToArray();
            Assert.Equal(ParseError.None, PacketParser.Parse(frame, out var packet));
            frames.Add((frame, packet));
            Replies.Outbox.Pop();
        }
        return frames;
    }

    public void Dispose()
    {
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }
    }
}
