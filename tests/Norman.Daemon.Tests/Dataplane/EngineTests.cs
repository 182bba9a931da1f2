using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Tests.Dataplane;

public sealed class EngineTests : IDisposable
{
    private readonly EngineHarness _wire = new();

    public void Dispose() => _wire.Dispose();

    [Fact]
    public void A_datagram_from_the_peer_reaches_the_bound_socket_byte_for_byte()
    {
        var app = _wire.Bind(5000);
        _wire.Peer.SendUdp(40000, 5000, "hello norman"u8);
        _wire.Breathe();

        var received = Assert.Single(app.ReceiveAll());
        Assert.Equal("hello norman"u8.ToArray(), received.Payload);
        Assert.Equal(40000, received.SourcePort);
        Assert.Equal(1, app.Socket.Pipe.Counters.RxPackets);
    }

    [Fact]
    public void Each_socket_receives_only_its_own_port()
    {
        var five = _wire.Bind(5000);
        var six = _wire.Bind(6000);
        _wire.Peer.SendUdp(1, 5000, "to five"u8);
        _wire.Peer.SendUdp(1, 6000, "to six"u8);
        _wire.Breathe();

        Assert.Equal("to five"u8.ToArray(), Assert.Single(five.ReceiveAll()).Payload);
        Assert.Equal("to six"u8.ToArray(), Assert.Single(six.ReceiveAll()).Payload);
    }

    [Fact]
    public void A_datagram_to_a_closed_port_is_counted_and_answered_with_port_unreachable()
    {
        _wire.ResolvePeer();
        _wire.Peer.SendUdp(1, 7777, "anyone?"u8);
        _wire.Breathe();

        Assert.Equal(1, _wire.Engine.Counters.Drops(DropReason.NoSocket));
        Assert.Equal(1, _wire.Peer.ReceivedPortUnreachable);
    }

    [Fact]
    public void The_host_announces_its_address_with_a_gratuitous_arp_when_it_starts()
    {
        _wire.Breathe();
        Assert.Equal(1, _wire.Engine.Counters.GratuitousArpSent);
        Assert.Equal(1, _wire.Peer.ReceivedGratuitousArp);
    }

    [Fact]
    public void The_host_answers_arp_and_ping()
    {
        var request = new byte[ControlFrames.MinimumFrameLength];
        ControlFrames.ArpRequest(request, _wire.Peer.Mac, EngineHarness.PeerAddress, EngineHarness.HostAddress);
        _wire.Peer.SendFrame(request);
        _wire.Peer.SendPing(1, 1, "ping"u8);
        _wire.Breathe();

        Assert.Equal(1, _wire.Engine.Counters.ArpRepliesSent);
        Assert.Equal(1, _wire.Peer.ReceivedEchoReplies);
        Assert.True(_wire.Engine.Neighbours.TryGet(EngineHarness.PeerAddress, out var learned));
        Assert.Equal(_wire.Peer.Mac, learned);
    }

    [Fact]
    public void A_datagram_to_an_unresolved_peer_waits_for_arp_then_leaves_intact()
    {
        var app = _wire.Bind(5000);
        app.Send("first words"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        _wire.Breathe();

        Assert.Equal(1, _wire.Engine.Counters.ArpRequestsSent);
        var datagram = _wire.Peer.TakeDatagram(TimeSpan.Zero);
        Assert.NotNull(datagram);
        Assert.Equal("first words"u8.ToArray(), datagram.Payload);
        Assert.Equal(5000, datagram.SourcePort);
        Assert.Equal(0, _wire.Engine.Counters.TotalDrops());
    }

    [Fact]
    public void A_forged_arp_for_the_resolved_peer_is_refused_counted_and_traffic_still_reaches_the_real_peer()
    {
        var app = _wire.Bind(5000);
        app.Send("first"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        _wire.Breathe();
        Assert.NotNull(_wire.Peer.TakeDatagram(TimeSpan.Zero)); // resolved by Norman's own ARP exchange

        // Someone on the wire claims the peer's address, by a request naming us and by an unsolicited reply.
        var attacker = MacAddress.Parse("02:66:66:66:66:66");
        var frame = new byte[ControlFrames.MinimumFrameLength];
        ControlFrames.ArpRequest(frame, attacker, EngineHarness.PeerAddress, EngineHarness.HostAddress);
        _wire.Peer.SendFrame(frame.ToArray());
        ControlFrames.ArpReply(frame, attacker, EngineHarness.PeerAddress, _wire.Engine.Host.Mac, EngineHarness.HostAddress);
        _wire.Peer.SendFrame(frame.ToArray());
        _wire.Breathe();

        Assert.Equal(2, _wire.Engine.Counters.Drops(DropReason.ArpMacChange));
        Assert.True(_wire.Engine.Neighbours.TryGet(EngineHarness.PeerAddress, out var mac));
        Assert.Equal(_wire.Peer.Mac, mac);
        app.Send("second"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        _wire.Breathe();
        Assert.Equal("second"u8.ToArray(), _wire.Peer.TakeDatagram(TimeSpan.Zero)?.Payload); // the peer's MAC, not the attacker's
    }

    [Fact]
    public void A_wildcard_socket_sends_with_the_hosts_address()
    {
        _wire.ResolvePeer();
        var app = _wire.Bind(5000);
        app.Send("x"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        _wire.Breathe();
        Assert.Equal(EngineHarness.HostAddress, _wire.Peer.TakeDatagram(TimeSpan.Zero)?.Source);
    }

    [Theory]
    [InlineData("source port")]
    [InlineData("source address")]
    public void A_forged_source_is_dropped_and_counted_against_the_socket(string forged)
    {
        _wire.ResolvePeer();
        var app = _wire.Bind(5000);
        var source = forged == "source address" ? NetAddress.Parse("198.18.0.99") : EngineHarness.HostAddress;
        ushort sourcePort = forged == "source port" ? (ushort)53 : (ushort)5000;
        app.Send("forged"u8, source, sourcePort, EngineHarness.PeerAddress, 9000);
        _wire.Breathe();

        Assert.Null(_wire.Peer.TakeDatagram(TimeSpan.Zero));
        Assert.Equal(1, _wire.Engine.Counters.Drops(DropReason.TxSpoofedSource));
        Assert.Equal(1, app.Socket.Pipe.Counters.Drops(DropReason.TxSpoofedSource));
    }

    [Fact]
    public unsafe void Garbage_in_one_pipes_indices_is_counted_and_the_others_are_still_served()
    {
        _wire.ResolvePeer();
        var hostile = _wire.Bind(5000);
        var honest = _wire.Bind(6000);
        var random = new Random(7);
        for (int round = 0; round < 1000; round++)
        {
            byte* tx = hostile.RegionAddress + hostile.TxRingOffset;
            *(uint*)(tx + PipeLayout.ProducerIndexOffset) = (uint)random.Next();
            for (int slot = 0; slot < 4; slot++)
            {
                *(uint*)(hostile.RegionAddress + hostile.TxSlotsOffset + slot * PipeLayout.DefaultSlotSize) = (uint)random.Next();
            }
            *(uint*)(hostile.RegionAddress + PipeLayout.ConsumerIndexOffset) = (uint)random.Next();
            honest.Send(BitConverter.GetBytes(round), EngineHarness.HostAddress, 6000, EngineHarness.PeerAddress, 9000);
            _wire.Peer.SendUdp(1, 6000, BitConverter.GetBytes(round));
            _wire.Peer.SendUdp(1, 5000, BitConverter.GetBytes(round));
            _wire.Breathe();
            Assert.Equal(round, BitConverter.ToInt32(_wire.Peer.TakeDatagram(TimeSpan.Zero)!.Payload));
            Assert.Equal(round, BitConverter.ToInt32(Assert.Single(honest.ReceiveAll()).Payload));
        }
        var counters = hostile.Socket.Pipe.Counters;
        Assert.True(counters.Drops(DropReason.TxCorruptIndex) + counters.Drops(DropReason.TxCorruptLength) + counters.Drops(DropReason.TxMalformed) > 0);
        Assert.Empty(honest.Socket.Pipe.Counters.DropSnapshot());
    }

    [Fact]
    public void A_full_rx_pipe_drops_for_that_socket_alone()
    {
        var slow = _wire.Bind(5000);
        var fast = _wire.Bind(6000);
        for (int i = 0; i < _wire.SlotCount + 10; i++)
        {
            _wire.Peer.SendUdp(1, 5000, "x"u8);
            _wire.Peer.SendUdp(1, 6000, "y"u8);
            _wire.Breathe();
            fast.ReceiveAll();
        }

        Assert.Equal(10, slow.Socket.Pipe.Counters.Drops(DropReason.RxPipeFull));
        Assert.Equal(0, fast.Socket.Pipe.Counters.Drops(DropReason.RxPipeFull));
        Assert.Equal(_wire.SlotCount, slow.ReceiveAll().Count);
    }

    [Fact]
    public void Malformed_frames_are_counted_by_reason_and_nothing_else_happens()
    {
        var app = _wire.Bind(5000);
        _wire.Peer.SendFrame(new byte[5]);
        var badChecksum = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + 1];
        EthernetHeader.Write(badChecksum, _wire.Engine.Host.Mac, _wire.Peer.Mac, EtherTypes.IPv4);
        UdpPacketBuilder.WriteHeaders(badChecksum.AsSpan(EthernetHeader.Size), EngineHarness.PeerAddress, 1, EngineHarness.HostAddress, 5000, 1);
        badChecksum[^1] ^= 0xFF;
        _wire.Peer.SendFrame(badChecksum);
        _wire.Breathe();

        Assert.Equal(1, _wire.Engine.Counters.Drops(DropReason.TruncatedEthernet));
        Assert.Equal(1, _wire.Engine.Counters.Drops(DropReason.BadUdpChecksum));
        Assert.Empty(app.ReceiveAll());
    }

    [Fact]
    public void Closing_a_socket_still_sends_what_it_had_queued()
    {
        _wire.ResolvePeer();
        var app = _wire.Bind(5000);
        for (int i = 0; i < 40; i++)
        {
            app.Send(BitConverter.GetBytes(i), EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        }
        _wire.Close(app);

        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(i, BitConverter.ToInt32(_wire.Peer.TakeDatagram(TimeSpan.Zero)!.Payload));
        }
        Assert.Equal(0, _wire.Engine.SocketCount);
        Assert.Equal(0, _wire.Engine.FlowCount);
    }

    [Fact]
    public void A_full_queue_of_packets_waiting_for_a_silent_neighbour_drops_the_excess_and_the_dataplane_goes_on()
    {
        var app = _wire.Bind(5000);
        var silent = NetAddress.Parse("198.18.0.77"); // on the subnet; nobody answers its ARP
        for (int breath = 0; breath < 4; breath++)
        {
            for (int i = 0; i < 32; i++)
            {
                app.Send("waiting"u8, EngineHarness.HostAddress, 5000, silent, 9000);
            }
            _wire.Engine.DoWork(); // a full batch every breath: the third finds the 64-frame queue full
        }
        _wire.Engine.DoWork();
        _wire.Engine.DoWork();
        Assert.Equal(0, app.Socket.Pipe.Tx.Available());
        Assert.Equal(128 - 64, _wire.Engine.Counters.Drops(DropReason.NeighbourUnreachable));
        _wire.Peer.SendUdp(40000, 5000, "still serving"u8);
        _wire.Breathe();
        Assert.Equal("still serving"u8.ToArray(), Assert.Single(app.ReceiveAll()).Payload);
    }

    [Fact]
    public void Two_engines_never_share_the_scheduling_state_of_their_qos_snapshot()
    {
        // A snapshot carries its dataplane's per-breath lists and deficits: one shared by two dataplane threads
        // would mix their sockets.
        using var other = new EngineHarness();
        Assert.NotSame(_wire.Engine.Qos, other.Engine.Qos);
        Assert.NotSame(_wire.Engine.Qos.Classes[0], other.Engine.Qos.Classes[0]);
    }

    [Theory]
    [InlineData(new ushort[] { 7 }, false)]
    [InlineData(new ushort[] { 4094 }, false)]
    [InlineData(new ushort[] { 0, 7 }, false)]
    [InlineData(new ushort[] { 0 }, true)] // priority-tagged only: taken as untagged, as Linux does
    public void A_frame_tagged_with_a_vlan_is_not_this_hosts_and_is_counted(ushort[] vlans, bool delivered)
    {
        var app = _wire.Bind(5000);
        _wire.Peer.SendFrame(Tagged(UdpFrame(40000, 5000, "tagged"u8), vlans));
        _wire.Breathe();

        Assert.Equal(delivered ? 1 : 0, app.ReceiveAll().Count);
        Assert.Equal(delivered ? 0 : 1, _wire.Engine.Counters.Drops(DropReason.VlanNotConfigured));
    }

    private byte[] UdpFrame(ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + payload.Length];
        EthernetHeader.Write(frame, _wire.Peer.HostMac, _wire.Peer.Mac, EtherTypes.IPv4);
        payload.CopyTo(frame.AsSpan(EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4));
        UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), EngineHarness.PeerAddress, sourcePort, EngineHarness.HostAddress,
            destinationPort, payload.Length);
        return frame;
    }

    /// <summary>The frame with 802.1Q tags (outermost first) between its MAC addresses and its EtherType.</summary>
    private static byte[] Tagged(byte[] frame, ushort[] vlans)
    {
        var tagged = new List<byte>(frame[..12]);
        foreach (ushort vlan in vlans)
        {
            tagged.AddRange([0x81, 0x00, (byte)(vlan >> 8), (byte)vlan]);
        }
        tagged.AddRange(frame[12..]);
        return [.. tagged];
    }
}
