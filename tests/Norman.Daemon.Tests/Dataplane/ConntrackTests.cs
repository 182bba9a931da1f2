using System.Buffers.Binary;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>Connection tracking as Linux's conntrack does it, with real frames: UDP flows, TCP's states and windows, ICMP queries and errors.</summary>
public sealed class ConntrackTests
{
    private const long Second = 1000;
    private const byte Syn = TcpHeader.Syn, Ack = TcpHeader.Ack, Fin = TcpHeader.Fin, Rst = TcpHeader.Rst, Psh = TcpHeader.Psh;
    private static readonly NetAddress Us = NetAddress.Parse("198.18.0.1");
    private static readonly NetAddress Them = NetAddress.Parse("198.18.0.2");
    private static readonly NetAddress Us6 = NetAddress.Parse("fd66::1");
    private static readonly NetAddress Them6 = NetAddress.Parse("fd66::2");
    private readonly Conntrack _conntrack = new(8, Second);

    [Theory]
    [InlineData(65_536)]  // the default --conntrack-max, a power of two: its table is not rounded up to twice its size
    [InlineData(100_000)]
    public void A_flow_the_table_can_hold_costs_at_most_128_bytes_all_taken_at_start(int flows)
    {
        var conntrack = new Conntrack(flows, Second);
        double perFlow = (double)conntrack.BytesAllocated / conntrack.Capacity;
        Assert.Equal(flows, conntrack.Capacity);
        Assert.True(perFlow <= 128, $"{perFlow:F1} bytes a flow");
    }

    /// <summary>A frame and its parse.</summary>
    private readonly record struct Frame(byte[] Bytes, ParsedPacket Packet, bool Outbound);

    private static Frame Parse(byte[] ip, bool outbound)
    {
        var frame = new byte[EthernetHeader.Size + ip.Length];
        EthernetHeader.Write(frame, MacAddress.Parse("02:00:00:00:00:02"), MacAddress.Parse("02:00:00:00:00:01"),
            ip[0] >> 4 == 6 ? EtherTypes.IPv6 : EtherTypes.IPv4);
        ip.CopyTo(frame, EthernetHeader.Size);
        Assert.Equal(ParseError.None, PacketParser.Parse(frame, out var packet));
        return new Frame(frame, packet, outbound);
    }

    private static Frame Udp(bool outbound, ushort ourPort = 5000, ushort theirPort = 53)
    {
        var ip = new byte[UdpPacketBuilder.HeaderLengthV4 + 4];
        UdpPacketBuilder.WriteHeaders(ip, outbound ? Us : Them, outbound ? ourPort : theirPort, outbound ? Them : Us, outbound ? theirPort : ourPort, 4);
        return Parse(ip, outbound);
    }

    private static Frame Tcp(bool outbound, byte flags, uint seq = 0, uint ack = 0, ushort window = 65535, int payload = 0, ushort ourPort = 5000, int scale = -1)
    {
        Span<byte> options = stackalloc byte[8];
        int optionLength = scale >= 0 ? TcpSegmentBuilder.WriteSynOptions(options, 1460, (byte)scale) : 0;
        var ip = new byte[TcpSegmentBuilder.HeaderLength + optionLength + payload];
        TcpSegmentBuilder.Write(ip, outbound ? Us : Them, outbound ? ourPort : (ushort)80, outbound ? Them : Us, outbound ? (ushort)80 : ourPort,
            new TcpSegmentFields(seq, ack, flags, window), options[..optionLength], payload);
        return Parse(ip, outbound);
    }

    private static Frame Icmp(bool outbound, byte type, ushort id = 7)
    {
        var ip = new byte[Ipv4Header.Size + 8];
        Ipv4Header.Write(ip, IpProtocols.Icmp, (outbound ? Us : Them).V4, (outbound ? Them : Us).V4, ip.Length, 0);
        ip[Ipv4Header.Size] = type;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(Ipv4Header.Size + 4), id);
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(Ipv4Header.Size + 2), InternetChecksum.Compute(ip.AsSpan(Ipv4Header.Size)));
        return Parse(ip, outbound);
    }

    private static Frame Udp6(bool outbound, ushort ourPort = 5000, ushort theirPort = 53)
    {
        var ip = new byte[UdpPacketBuilder.HeaderLengthV6 + 4];
        UdpPacketBuilder.WriteHeaders(ip, outbound ? Us6 : Them6, outbound ? ourPort : theirPort, outbound ? Them6 : Us6, outbound ? theirPort : ourPort, 4);
        return Parse(ip, outbound);
    }

    private static Frame Icmp6(bool outbound, byte type, ushort id = 7)
    {
        var ip = new byte[Ipv6Header.Size + 8];
        Ipv6Header.Write(ip, IpProtocols.IcmpV6, outbound ? Us6 : Them6, outbound ? Them6 : Us6, 8);
        ip[Ipv6Header.Size] = type;
        BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(Ipv6Header.Size + 4), id);
        return Parse(ip, outbound);
    }

    private ConnectionState State(Frame f, long now = 0) => _conntrack.StateOf(f.Bytes, f.Packet, f.Outbound, now);

    /// <summary>The state as the filter would see it, then tracked as an accepted packet is.</summary>
    private ConnectionState Pass(Frame f, long now = 0)
    {
        var state = State(f, now);
        _conntrack.Track(f.Bytes, f.Packet, f.Outbound, now);
        return state;
    }

    [Fact]
    public void A_flow_is_new_until_a_packet_goes_the_other_way_then_established_both_ways()
    {
        Assert.Equal(ConnectionState.New, Pass(Udp(true)));
        Assert.Equal(ConnectionState.New, State(Udp(true), 1));
        Assert.Equal(ConnectionState.Established, Pass(Udp(false), 2));
        Assert.Equal(ConnectionState.Established, State(Udp(true), 3));
        Assert.Equal(ConnectionState.New, State(Udp(false, theirPort: 54), 3));
    }

    [Fact]
    public void Flows_expire_sooner_unreplied_than_established()
    {
        Pass(Udp(true));
        Assert.Equal(ConnectionState.New, State(Udp(false), (Conntrack.UnrepliedSeconds + 1) * Second));

        Pass(Udp(true, ourPort: 6000));
        Pass(Udp(false, ourPort: 6000), 1);
        Assert.Equal(ConnectionState.Established, State(Udp(false, ourPort: 6000), (Conntrack.UnrepliedSeconds + 1) * Second));
        Assert.Equal(ConnectionState.New, State(Udp(false, ourPort: 6000), (Conntrack.EstablishedSeconds + 2) * Second));
    }

    /// <summary>The handshake of a connection we open: client ISN 1000, server ISN 5000, both offering window scaling.</summary>
    private void Handshake(ushort ourPort = 5000, long now = 0)
    {
        Assert.Equal(ConnectionState.New, Pass(Tcp(true, Syn, seq: 1000, window: 64240, ourPort: ourPort, scale: 7), now));
        Assert.Equal(ConnectionState.Established, Pass(Tcp(false, Syn | Ack, seq: 5000, ack: 1001, window: 65160, ourPort: ourPort, scale: 7), now));
        Assert.Equal(ConnectionState.Established, Pass(Tcp(true, Ack, seq: 1001, ack: 5001, window: 502, ourPort: ourPort), now));
    }

    [Fact]
    public void A_tcp_connection_is_established_by_the_syn_ack_and_outlives_an_idle_udp_flow_by_days()
    {
        Handshake();
        // Quiet for an hour, as a keep-alive connection is: still established, where a UDP flow would long be gone.
        long hour = 3600 * Second;
        Assert.Equal(ConnectionState.Established, State(Tcp(false, Ack, seq: 5001, ack: 1001, window: 509), hour));
        Assert.Equal(ConnectionState.New, State(Tcp(false, Ack, seq: 5001, ack: 1001, window: 509), (Conntrack.TcpEstablishedSeconds + 2) * Second));
    }

    [Theory]
    [InlineData(Syn | Ack)]
    [InlineData(Fin)]
    [InlineData(Fin | Ack)]
    [InlineData(Rst)]
    [InlineData(Syn | Fin)]
    [InlineData(0)]
    [InlineData(Fin | Psh | 0x20)]
    public void A_first_segment_no_connection_could_open_with_is_invalid_and_tracks_nothing(byte flags)
    {
        Assert.Equal(ConnectionState.Invalid, Pass(Tcp(false, flags, seq: 9000, ack: 1)));
        Assert.Equal(0, _conntrack.Count);
    }

    [Fact]
    public void A_first_ack_is_picked_up_mid_stream_as_linux_does_with_tcp_loose()
    {
        Assert.Equal(ConnectionState.New, Pass(Tcp(false, Ack, seq: 9000, ack: 100)));
        Assert.Equal(ConnectionState.Established, State(Tcp(true, Ack, seq: 100, ack: 9000)));
    }

    [Fact]
    public void A_segment_outside_the_windows_is_invalid_and_changes_nothing()
    {
        Handshake();
        Assert.Equal(ConnectionState.Invalid, Pass(Tcp(false, Ack, seq: 5001, ack: 1001 + 10_000_000, window: 509)));
        Assert.Equal(ConnectionState.Invalid, Pass(Tcp(false, Ack | Psh, seq: 5001 + 100_000_000, ack: 1001, payload: 10)));
        Assert.Equal(ConnectionState.Invalid, Pass(Tcp(false, Ack | Psh, seq: unchecked(5001u - 1_000_000u), ack: 1001, payload: 10)));
        // The connection is as it was: its own next segments are established.
        Assert.Equal(ConnectionState.Established, Pass(Tcp(false, Ack | Psh, seq: 5001, ack: 1001, window: 509, payload: 100)));
        Assert.Equal(ConnectionState.Established, Pass(Tcp(true, Ack, seq: 1001, ack: 5101, window: 502)));
    }

    /// <summary>
    /// Scaled windows, as the real peers use them: the server (scale 10) sends far past its unscaled 16-bit window, into
    /// ours as scaled by 7. A scale dropped at the opening SYN (before the answer said whether both offer it) made
    /// every segment past 65,535 bytes invalid, and a download behind "ct state established accept" stalled.
    /// </summary>
    [Fact]
    public void Segments_within_a_scaled_window_are_established_however_far_past_64_KiB_they_go()
    {
        Pass(Tcp(true, Syn, seq: 1000, window: 65535, scale: 7));
        Pass(Tcp(false, Syn | Ack, seq: 5000, ack: 1001, window: 65160, scale: 10));
        Pass(Tcp(true, Ack, seq: 1001, ack: 5001, window: 1460)); // 1460 << 7 = 186,880 bytes of room
        uint next = 5001;
        for (int segment = 0; segment < 100; segment++)
        {
            Assert.Equal(ConnectionState.Established, Pass(Tcp(false, Ack | Psh, seq: next, ack: 1001, window: 64, payload: 1460)));
            next += 1460;
            if (segment % 10 == 9)
            {
                Pass(Tcp(true, Ack, seq: 1001, ack: next, window: 1460));
            }
        }
    }

    [Theory]
    [InlineData(Fin | Ack, Conntrack.TcpClosingSeconds)]
    [InlineData(Rst, Conntrack.TcpResetSeconds)]
    public void A_tcp_connection_that_ends_is_forgotten_after_linuxs_closing_time(byte ending, int seconds)
    {
        Handshake();
        Pass(Tcp(true, ending, seq: 1001, ack: 5001, window: 502));
        uint acknowledged = (ending & Fin) != 0 ? 1002u : 1001u; // a FIN takes a sequence number, a reset none
        Assert.Equal(ConnectionState.Established, State(Tcp(false, Ack, seq: 5001, ack: acknowledged, window: 509), (seconds - 1) * Second));
        Assert.Equal(ConnectionState.Invalid, State(Tcp(false, Ack | Fin, seq: 5001, ack: acknowledged, window: 509), (seconds + 1) * Second + 1));

        // The same port pair opened again by a new SYN lives the long life again.
        Handshake(now: (seconds + 2) * Second);
        Assert.Equal(ConnectionState.Established, State(Tcp(false, Ack, seq: 5001, ack: 1001, window: 509), (seconds + 3600) * Second));
    }

    [Fact]
    public void The_listing_names_each_tcp_connections_state_as_linux_does_and_the_seconds_it_has_left()
    {
        Pass(Tcp(true, Syn, seq: 1000, ourPort: 1));                                 // we called, no answer yet
        Handshake(ourPort: 2);                                                        // answered
        Pass(Tcp(false, Syn, seq: 7000, ourPort: 3));                                 // they called, we answered, they closed
        Pass(Tcp(true, Syn | Ack, seq: 300, ack: 7001, ourPort: 3));
        Pass(Tcp(false, Ack, seq: 7001, ack: 301, ourPort: 3));
        Pass(Tcp(false, Fin | Ack, seq: 7001, ack: 301, ourPort: 3));
        var flows = new List<TrackedFlow>();
        Assert.Equal(-1, _conntrack.List(0, int.MaxValue, flows, 10 * Second));
        var byPort = flows.ToDictionary(f => f.Key.LocalPort);
        Assert.Equal(("SYN_SENT", false, true, Conntrack.TcpUnrepliedSeconds - 10), (byPort[1].State, byPort[1].Replied, byPort[1].OriginLocal, byPort[1].SecondsLeft));
        Assert.Equal(("ESTABLISHED", true, Conntrack.TcpEstablishedSeconds - 10), (byPort[2].State, byPort[2].Replied, byPort[2].SecondsLeft));
        Assert.Equal(("FIN_WAIT", false), (byPort[3].State, byPort[3].OriginLocal));

        Pass(Tcp(true, Fin | Ack, seq: 301, ack: 7002, ourPort: 3), 10 * Second);   // and we answered with ours
        Pass(Tcp(false, Ack, seq: 7002, ack: 302, ourPort: 3), 10 * Second);
        Pass(Tcp(false, Fin | Ack, seq: 5001, ack: 1001, ourPort: 2), 10 * Second); // the one we called closes on us,
        Pass(Tcp(true, Ack, seq: 1001, ack: 5002, ourPort: 2), 10 * Second);         // and we take its FIN
        Pass(Tcp(false, Rst | Ack, seq: 0, ack: 1001, ourPort: 1), 10 * Second);
        flows.Clear();
        _conntrack.List(0, int.MaxValue, flows, 10 * Second);
        byPort = flows.ToDictionary(f => f.Key.LocalPort);
        Assert.Equal(("TIME_WAIT", Conntrack.TcpClosingSeconds), (byPort[3].State, byPort[3].SecondsLeft));
        Assert.Equal("CLOSE_WAIT", byPort[2].State);
        Assert.Equal(("CLOSE", Conntrack.TcpResetSeconds), (byPort[1].State, byPort[1].SecondsLeft));
    }

    [Fact]
    public void Pings_are_a_flow_by_their_id_and_a_reply_to_nothing_is_invalid()
    {
        // Ours: the request is new, its reply established, the next request on the same id established too.
        Assert.Equal(ConnectionState.New, Pass(Icmp(true, IcmpHeader.EchoRequestV4)));
        Assert.Equal(ConnectionState.Established, Pass(Icmp(false, IcmpHeader.EchoReplyV4)));
        Assert.Equal(ConnectionState.Established, Pass(Icmp(true, IcmpHeader.EchoRequestV4)));
        // Theirs: the host answers a ping itself, so the next one on the id is established.
        Assert.Equal(ConnectionState.New, Pass(Icmp(false, IcmpHeader.EchoRequestV4, id: 9)));
        Assert.Equal(ConnectionState.Established, Pass(Icmp(false, IcmpHeader.EchoRequestV4, id: 9)));
        // A reply nobody asked for.
        Assert.Equal(ConnectionState.Invalid, Pass(Icmp(false, IcmpHeader.EchoReplyV4, id: 42)));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(9)]
    [InlineData(10)]
    [InlineData(14)]
    [InlineData(42)]
    public void An_icmp_message_conntrack_takes_no_part_of_is_invalid(byte type) =>
        Assert.Equal(ConnectionState.Invalid, Pass(Icmp(false, type)));

    [Fact]
    public void Pings_over_ipv6_are_a_flow_by_their_id_and_neighbour_discovery_is_untracked_as_on_linux()
    {
        Assert.Equal(ConnectionState.New, Pass(Icmp6(true, IcmpHeader.EchoRequestV6)));
        Assert.Equal(ConnectionState.Established, Pass(Icmp6(false, IcmpHeader.EchoReplyV6)));
        Assert.Equal(ConnectionState.Invalid, Pass(Icmp6(false, IcmpHeader.EchoReplyV6, id: 42)));
        Assert.Equal(ConnectionState.New, Pass(Icmp6(false, IcmpHeader.EchoRequestV6, id: 9)));
        Assert.Equal(ConnectionState.Established, Pass(Icmp6(false, IcmpHeader.EchoRequestV6, id: 9))); // the host answered it
        foreach (byte discovery in new byte[] { 133, 134, Icmpv6Frames.NeighbourSolicitation, Icmpv6Frames.NeighbourAdvertisement, 137 })
        {
            Assert.Equal(ConnectionState.Untracked, Pass(Icmp6(false, discovery)));
        }
        Assert.Equal(ConnectionState.Invalid, Pass(Icmp6(false, 200)));
        Assert.Equal(2, _conntrack.Count); // the two pings' flows: discovery made none
    }

    [Fact]
    public void An_icmpv6_error_quoting_a_tracked_ipv6_flow_is_related_and_one_quoting_nothing_is_invalid()
    {
        Pass(Udp6(true));
        ConnectionState Answer(ushort ourPort)
        {
            var offending = Udp6(true, ourPort);
            var icmp = new byte[256];
            int length = Icmpv6Frames.Unreachable(offending.Bytes, offending.Packet, icmp, MacAddress.Parse("02:00:00:00:00:02"), Icmpv6Frames.PortUnreachableCode);
            Assert.Equal(ParseError.None, PacketParser.Parse(icmp.AsSpan(0, length), out var packet));
            return _conntrack.StateOf(icmp.AsSpan(0, length), packet, false, 1);
        }
        Assert.Equal(ConnectionState.Related, Answer(5000));
        Assert.Equal(ConnectionState.Invalid, Answer(5999));
    }

    [Fact]
    public void A_full_table_tracks_no_more_and_says_so()
    {
        for (ushort port = 1; port <= 10; port++)
        {
            Pass(Udp(true, ourPort: port));
        }
        Assert.Equal(8, _conntrack.Count);
        Assert.Equal(2, _conntrack.TableFull);
    }

    [Fact]
    public void An_icmp_error_quoting_a_tracked_flow_is_related_and_one_quoting_nothing_is_invalid()
    {
        Pass(Udp(true));
        Assert.Equal(ConnectionState.Related, _conntrack.StateOf(Unreachable(5000), ParseUnreachable(5000), false, 1));
        Assert.Equal(ConnectionState.Invalid, _conntrack.StateOf(Unreachable(5999), ParseUnreachable(5999), false, 1));
    }

    private static byte[] Unreachable(ushort ourPort)
    {
        var offending = Udp(true, ourPort);
        // The peer's answer to the datagram we sent: from them to us, quoting it.
        var icmp = new byte[128];
        int length = ControlFrames.PortUnreachableV4(offending.Bytes, offending.Packet, icmp, MacAddress.Parse("02:00:00:00:00:02"));
        return icmp[..length];
    }

    private static ParsedPacket ParseUnreachable(ushort ourPort)
    {
        PacketParser.Parse(Unreachable(ourPort), out var packet);
        return packet;
    }
}
