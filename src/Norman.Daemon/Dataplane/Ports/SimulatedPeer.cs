using System.Buffers.Binary;
using System.Collections.Concurrent;
using Norman.Core.Packets;
using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// The host at the far end of the virtual wire: its own MAC and IP, it answers ARP and ping, echoes UDP on the
/// ports it is told to, keeps what it receives for tests to read, and sources UDP floods for the benchmark.
/// Its wire-facing methods run on the dataplane thread; the Send*/Take* methods are for any other thread.
/// </summary>
public sealed class SimulatedPeer
{
    /// <summary>How many received datagrams are kept for tests; beyond that they are only counted.</summary>
    public const int MaxKeptDatagrams = 65536;

    private readonly ConcurrentQueue<byte[]> _injected = new();
    private readonly FrameQueue _replies = new(256);
    private readonly BlockingCollection<PeerDatagram> _kept = new(new ConcurrentQueue<PeerDatagram>(), MaxKeptDatagrams);
    // Copy-on-write, so the dataplane thread reads it without a lock.
    private volatile ushort[] _echoPorts = [];
    private volatile ushort[] _sinkPorts = [];
    private volatile PeerTcpExchange[] _exchanges = [];
    private int _nextExchangePort = 41000;
    private readonly byte[] _flood = new byte[PacketBatch.FrameSize];
    private int _floodLength;
    private long _floodRemaining;
    private int _floodFlows = 1;
    private int _floodPorts = 1;
    private long _floodSequence;
    private int _identification;
    private readonly RequestStream _requests = new();

    public SimulatedPeer(MacAddress mac, NetAddress address)
    {
        Mac = mac;
        Address = address;
    }

    public MacAddress Mac { get; }

    /// <summary>Signalled whenever another thread gives the peer something to send: the virtual wire's own wake-up.</summary>
    internal EventFd Doorbell { get; } = EventFd.Create();
    public NetAddress Address { get; }

    /// <summary>The peer's IPv6 address, for datagrams it sends over IPv6 (a benchmark's flood); none by default.</summary>
    public NetAddress? Address6 { get; init; }

    /// <summary>Norman's MAC and address as the peer has learned them (from ARP, or from any frame Norman sent).</summary>
    public MacAddress HostMac { get; set; }
    public NetAddress HostAddress { get; set; }

    /// <summary>Keep received UDP datagrams for <see cref="TakeDatagram"/>; off for benchmarks, which only count.</summary>
    public bool KeepDatagrams { get; set; } = true;

    public long ReceivedUdpPackets;
    /// <summary>Datagrams that arrived on a <see cref="SinkOnPort"/> port.</summary>
    public long SunkPackets;
    public long ReceivedUdpBytes;
    public long ReceivedEchoReplies;
    public long ReceivedGratuitousArp;
    /// <summary>TCP resets with a correct checksum.</summary>
    public long ReceivedTcpResets;
    public long ReceivedPortUnreachable;
    public long DroppedReplies;

    // ---- Any thread ----

    public void EchoOnPort(ushort port)
    {
        _echoPorts = [.. _echoPorts, port];
    }

    /// <summary>Datagrams to this port are only counted, never kept: a discard service for bulk senders.</summary>
    public void SinkOnPort(ushort port) => _sinkPorts = [.. _sinkPorts, port];

    /// <summary>Queues a UDP datagram from the peer to Norman.</summary>
    public void SendUdp(ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload, NetAddress? destination = null)
    {
        var frame = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + payload.Length];
        BuildUdp(frame, sourcePort, destination ?? HostAddress, destinationPort, payload);
        SendFrame(frame);
    }

    /// <summary>Queues a raw frame as if it arrived on the wire (malformed ones included), waking a sleeping dataplane.</summary>
    public void SendFrame(byte[] frame)
    {
        _injected.Enqueue(frame);
        Doorbell.Signal();
    }

    /// <summary>Queues an ICMP echo request to Norman's address.</summary>
    public void SendPing(ushort identifier, ushort sequence, ReadOnlySpan<byte> payload)
    {
        int icmpLength = IcmpHeader.Size + payload.Length;
        var frame = new byte[EthernetHeader.Size + Ipv4Header.Size + icmpLength];
        EthernetHeader.Write(frame, HostMac, Mac, EtherTypes.IPv4);
        var ip = frame.AsSpan(EthernetHeader.Size);
        Ipv4Header.Write(ip, IpProtocols.Icmp, Address.V4, HostAddress.V4, Ipv4Header.Size + icmpLength, NextIdentification());
        var icmp = ip[Ipv4Header.Size..];
        ref var header = ref IcmpHeader.At(icmp);
        header.Type = IcmpHeader.EchoRequestV4;
        header.Identifier = identifier;
        header.Sequence = sequence;
        payload.CopyTo(icmp[IcmpHeader.Size..]);
        header.Checksum = InternetChecksum.Compute(icmp);
        SendFrame(frame);
    }

    /// <summary>Sends <paramref name="count"/> copies of one datagram as fast as the line rate allows (the benchmark's source).</summary>
    /// <remarks>
    /// With <paramref name="flows"/> or <paramref name="destinationPorts"/> above 1, packet k comes from flow k mod
    /// flows (a source port and, past 60,000 flows, a source address of its own: <see cref="FloodSource"/>) to port
    /// destinationPort + k mod destinationPorts, without a UDP checksum (optional over IPv4), so that the peer's cost
    /// per packet stays the same whatever the count. <paramref name="destination"/> is Norman's address to flood: its IPv4
    /// one by default; an IPv6 one takes a single flow to a single port.
    /// </remarks>
    public void StartFlood(ushort sourcePort, ushort destinationPort, int payloadLength, long count, int flows = 1, int destinationPorts = 1,
        NetAddress? destination = null)
    {
        Span<byte> payload = stackalloc byte[payloadLength];
        payload.Fill(0x5A);
        if (destination is { IsV4: false } && (flows > 1 || destinationPorts > 1))
        {
            throw new ArgumentException("An IPv6 flood is one flow to one port.");
        }
        _floodLength = BuildUdp(_flood, sourcePort, destination ?? HostAddress, destinationPort, payload);
        _floodFlows = Math.Max(1, flows);
        _floodPorts = Math.Max(1, destinationPorts);
        _floodSequence = 0;
        if (_floodFlows > 1 || _floodPorts > 1)
        {
            UdpHeader.At(_flood.AsSpan(EthernetHeader.Size + Ipv4Header.Size)).Checksum = 0;
        }
        Volatile.Write(ref _floodRemaining, count);
        Doorbell.Signal();
    }

    /// <summary>Packets of the current flood still to send; 0 once it is done.</summary>
    public long FloodRemaining => Volatile.Read(ref _floodRemaining);

    /// <summary>The source address and port of flood flow <paramref name="flow"/>: the peer's port space, then the next address's.</summary>
    public (NetAddress Address, ushort Port) FloodSource(int flow) =>
        (NetAddress.FromV4(Address.V4 + (uint)(flow / FlowsPerAddress)), (ushort)(1024 + flow % FlowsPerAddress));

    private const int FlowsPerAddress = 60_000;

    /// <summary>Rewrites the flood's template, copied into <paramref name="frame"/>, into packet <paramref name="sequence"/> of a many-flow flood.</summary>
    private void VaryFlood(Span<byte> frame, long sequence)
    {
        var ip = frame[EthernetHeader.Size..];
        var (source, sourcePort) = FloodSource((int)(sequence % _floodFlows));
        source.WriteV4(ip[12..16]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[Ipv4Header.Size..], sourcePort);
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(_flood.AsSpan(EthernetHeader.Size + Ipv4Header.Size + 2));
        BinaryPrimitives.WriteUInt16BigEndian(ip[(Ipv4Header.Size + 2)..], (ushort)(destinationPort + sequence % _floodPorts));
        ip[10] = ip[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], InternetChecksum.Compute(ip[..Ipv4Header.Size]));
    }

    /// <summary>
    /// Sends <paramref name="perSecond"/> requests a second to <paramref name="port"/> ("#N " then <paramref name="request"/>,
    /// as kvdb answers with the same tag) and times each answer on the wire's clock; 0 stops. See <see cref="TakeRoundTrips"/>.
    /// </summary>
    public void StartRequests(ushort port, string request, double perSecond)
    {
        _requests.Start(port, request, perSecond);
        Doorbell.Signal();
    }

    /// <summary>Round trips (µs) of the requests answered since the last call, the number of the request each answers, and how many were sent in all.</summary>
    public (double[] Microseconds, long[] Requests, long Sent) TakeRoundTrips() => _requests.Take();

    /// <summary>
    /// Connects to Norman's <paramref name="port"/> over TCP, sends <paramref name="request"/> and returns what the
    /// server sent until it closed, or how it failed (refused by a reset, or nothing within the timeout).
    /// </summary>
    public async Task<PeerTcpResult> ExchangeTcpAsync(ushort port, byte[] request, TimeSpan timeout)
    {
        var localPort = (ushort)(41000 + Interlocked.Increment(ref _nextExchangePort) % 20000);
        var exchange = new PeerTcpExchange(this, localPort, port, request);
        lock (_injected)
        {
            _exchanges = [.. _exchanges, exchange];
        }
        try
        {
            return await exchange.RunAsync(timeout).ConfigureAwait(false);
        }
        finally
        {
            lock (_injected)
            {
                _exchanges = [.. _exchanges.Where(e => e != exchange)];
            }
        }
    }

    /// <summary>Waits for the next UDP datagram the peer received; null when the timeout passes first.</summary>
    public PeerDatagram? TakeDatagram(TimeSpan timeout) => _kept.TryTake(out var datagram, timeout) ? datagram : null;

    // ---- Dataplane thread ----

    /// <summary>
    /// Whether the peer has frames to put on the wire now (replies, injected frames, a flood), and whether a request
    /// stream will have some later (the dataplane may then sleep only briefly). Read after draining <see cref="Doorbell"/>,
    /// so that anything queued after this look rings it again.
    /// </summary>
    internal bool HasWork(out bool later)
    {
        later = _requests.Active;
        return _replies.Count > 0 || !_injected.IsEmpty || Volatile.Read(ref _floodRemaining) > 0;
    }

    /// <summary>Frames the peer puts on the wire: replies first, then injected frames, then the flood.</summary>
    internal int Produce(PacketBatch batch, ref long budget, long now)
    {
        int produced = 0;
        while (!batch.IsFull && budget > 0 && _requests.Due(now))
        {
            int length = _requests.Write(batch.NextBuffer(), now, this);
            batch.Append(length);
            budget -= LineRate.WireBytes(length);
            produced++;
        }
        while (!batch.IsFull && _replies.Count > 0 && budget > 0)
        {
            var frame = _replies.Peek();
            frame.CopyTo(batch.NextBuffer());
            batch.Append(frame.Length);
            budget -= LineRate.WireBytes(frame.Length);
            _replies.Pop();
            produced++;
        }
        while (!batch.IsFull && budget > 0 && _injected.TryDequeue(out var injected))
        {
            int length = Math.Min(injected.Length, PacketBatch.FrameSize);
            injected.AsSpan(0, length).CopyTo(batch.NextBuffer());
            batch.Append(length);
            budget -= LineRate.WireBytes(length);
            produced++;
        }
        while (!batch.IsFull && budget > 0 && _floodRemaining > 0)
        {
            _flood.AsSpan(0, _floodLength).CopyTo(batch.NextBuffer());
            if (_floodFlows > 1 || _floodPorts > 1)
            {
                VaryFlood(batch.NextBuffer(), _floodSequence++);
            }
            batch.Append(_floodLength);
            budget -= LineRate.WireBytes(_floodLength);
            Volatile.Write(ref _floodRemaining, _floodRemaining - 1);
            produced++;
        }
        return produced;
    }

    /// <summary>A frame Norman put on the wire: the peer reacts as a small host would.</summary>
    internal void Accept(ReadOnlySpan<byte> frame, long now)
    {
        if (PacketParser.Parse(frame, out var packet) != ParseError.None)
        {
            return;
        }
        var destinationMac = EthernetHeader.Destination(frame);
        if (destinationMac != Mac && !destinationMac.IsBroadcast)
        {
            return;
        }
        switch (packet.Kind)
        {
            case PacketKind.Arp:
                AcceptArp(frame[packet.NetworkOffset..]);
                break;
            case PacketKind.Udp when packet.Destination == Address && packet.SourcePort == _requests.Port:
                _requests.Answered(frame[packet.PayloadOffset..packet.PacketEnd], now);
                break;
            case PacketKind.Udp when packet.Destination == Address:
                AcceptUdp(frame, packet);
                break;
            case PacketKind.Tcp when packet.Destination == Address:
                AcceptTcp(frame, packet);
                break;
            case PacketKind.Icmp when packet.Destination == Address:
                if (packet.IcmpType == IcmpHeader.EchoReplyV4)
                {
                    ReceivedEchoReplies++;
                }
                else if (packet.IcmpType == IcmpHeader.DestinationUnreachableV4 && packet.IcmpCode == IcmpHeader.PortUnreachableCode)
                {
                    ReceivedPortUnreachable++;
                }
                break;
        }
    }

    private void AcceptTcp(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        if (!InternetChecksum.IsValidTransport(frame, packet))
        {
            return;
        }
        if ((packet.TcpFlags & TcpHeader.Rst) != 0)
        {
            ReceivedTcpResets++;
        }
        foreach (var exchange in _exchanges)
        {
            if (exchange.LocalPort == packet.DestinationPort)
            {
                exchange.OnSegment(TcpHeader.At(frame[packet.TransportOffset..]), frame[packet.PayloadOffset..packet.PacketEnd]);
            }
        }
    }

    private void AcceptArp(ReadOnlySpan<byte> arp)
    {
        if (ArpPacket.SenderIp(arp) == ArpPacket.TargetIp(arp))
        {
            ReceivedGratuitousArp++;
            if (ArpPacket.SenderIp(arp) == HostAddress)
            {
                HostMac = ArpPacket.SenderMac(arp);
            }
            return;
        }
        if (ArpPacket.TargetIp(arp) != Address)
        {
            return;
        }
        HostMac = ArpPacket.SenderMac(arp);
        HostAddress = ArpPacket.SenderIp(arp);
        if (System.Runtime.InteropServices.MemoryMarshal.AsRef<ArpPacket>(arp).Operation != ArpPacket.Request)
        {
            return;
        }
        var reply = _replies.Reserve();
        if (reply.IsEmpty)
        {
            DroppedReplies++;
            return;
        }
        _replies.Commit(ControlFrames.ArpReply(reply, Mac, Address, HostMac, HostAddress));
    }

    private void AcceptUdp(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        ReceivedUdpPackets++;
        ReceivedUdpBytes += packet.PayloadLength;
        var payload = frame[packet.PayloadOffset..packet.PacketEnd];
        if (Array.IndexOf(_echoPorts, packet.DestinationPort) >= 0)
        {
            var reply = _replies.Reserve();
            if (reply.IsEmpty)
            {
                DroppedReplies++;
                return;
            }
            _replies.Commit(BuildUdp(reply, packet.DestinationPort, packet.Source, packet.SourcePort, payload));
            return;
        }
        if (Array.IndexOf(_sinkPorts, packet.DestinationPort) >= 0)
        {
            SunkPackets++;
            return;
        }
        if (KeepDatagrams)
        {
            _kept.TryAdd(new PeerDatagram(packet.Source, packet.SourcePort, packet.DestinationPort, payload.ToArray(), frame[packet.NetworkOffset + 1] >> 2));
        }
    }

    internal int BuildUdp(Span<byte> frame, ushort sourcePort, NetAddress destination, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        var source = destination.IsV4 ? Address : Address6 ?? throw new InvalidOperationException("The simulated peer has no IPv6 address.");
        EthernetHeader.Write(frame, HostMac, Mac, destination.IsV4 ? EtherTypes.IPv4 : EtherTypes.IPv6);
        var ip = frame[EthernetHeader.Size..];
        payload.CopyTo(ip[UdpPacketBuilder.HeaderLength(source)..]);
        int length = UdpPacketBuilder.WriteHeaders(ip, source, sourcePort, destination, destinationPort, payload.Length, NextIdentification());
        return EthernetHeader.Size + length;
    }

    private ushort NextIdentification() => (ushort)Interlocked.Increment(ref _identification);
}

/// <summary>A UDP datagram the simulated peer received, with the DSCP its IPv4 header carried.</summary>
public sealed record PeerDatagram(NetAddress Source, ushort SourcePort, ushort DestinationPort, byte[] Payload, int Dscp = 0);
