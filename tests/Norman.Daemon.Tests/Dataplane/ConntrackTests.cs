using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Tests.Dataplane;

public sealed class ConntrackTests
{
    private const long Second = 1000;
    private static readonly NetAddress Us = NetAddress.Parse("198.18.0.1");
    private static readonly NetAddress Them = NetAddress.Parse("198.18.0.2");
    private readonly Conntrack _conntrack = new(4, Second);

    private static ParsedPacket Udp(bool outbound, ushort ourPort = 5000, ushort theirPort = 53) => new()
    {
        Kind = PacketKind.Udp,
        IpVersion = 4,
        Protocol = IpProtocols.Udp,
        Source = outbound ? Us : Them,
        Destination = outbound ? Them : Us,
        SourcePort = outbound ? ourPort : theirPort,
        DestinationPort = outbound ? theirPort : ourPort,
    };

    [Fact]
    public void A_flow_is_new_until_a_packet_goes_the_other_way_then_established_both_ways()
    {
        Assert.Equal(ConnectionState.New, _conntrack.StateOf([], Udp(true), true, 0));
        _conntrack.Track(Udp(true), true, 0);
        Assert.Equal(ConnectionState.New, _conntrack.StateOf([], Udp(true), true, 1));
        Assert.Equal(ConnectionState.Established, _conntrack.StateOf([], Udp(false), false, 2));
        _conntrack.Track(Udp(false), false, 2);
        Assert.Equal(ConnectionState.Established, _conntrack.StateOf([], Udp(true), true, 3));
        Assert.Equal(ConnectionState.New, _conntrack.StateOf([], Udp(false, theirPort: 54), false, 3));
    }

    [Fact]
    public void Flows_expire_sooner_unreplied_than_established()
    {
        _conntrack.Track(Udp(true), true, 0);
        Assert.Equal(ConnectionState.New, _conntrack.StateOf([], Udp(false), false, (Conntrack.UnrepliedSeconds + 1) * Second));

        _conntrack.Track(Udp(true, ourPort: 6000), true, 0);
        _conntrack.Track(Udp(false, ourPort: 6000), false, 1);
        Assert.Equal(ConnectionState.Established, _conntrack.StateOf([], Udp(false, ourPort: 6000), false, (Conntrack.UnrepliedSeconds + 1) * Second));
        Assert.Equal(ConnectionState.New, _conntrack.StateOf([], Udp(false, ourPort: 6000), false, (Conntrack.EstablishedSeconds + 2) * Second));
    }

    private static ParsedPacket Tcp(bool outbound, byte flags, ushort ourPort = 5000) => Udp(outbound, ourPort, theirPort: 80) with
    {
        Kind = PacketKind.Tcp,
        Protocol = IpProtocols.Tcp,
        TcpFlags = flags,
    };

    [Fact]
    public void A_tcp_connection_is_established_by_the_syn_ack_and_outlives_an_idle_udp_flow_by_days()
    {
        const byte Ack = TcpHeader.Ack;
        _conntrack.Track(Tcp(true, TcpHeader.Syn), true, 0);
        Assert.Equal(ConnectionState.New, _conntrack.StateOf([], Tcp(true, TcpHeader.Syn), true, 1));
        Assert.Equal(ConnectionState.Established, _conntrack.StateOf([], Tcp(false, TcpHeader.Syn | Ack), false, 1));
        _conntrack.Track(Tcp(false, TcpHeader.Syn | Ack), false, 1);
        // Quiet for an hour, as a keep-alive connection is: still established, where a UDP flow would long be gone.
        long hour = 3600 * Second;
        Assert.Equal(ConnectionState.Established, _conntrack.StateOf([], Tcp(false, Ack), false, hour));
        Assert.Equal(ConnectionState.New, _conntrack.StateOf([], Tcp(false, Ack), false, (Conntrack.TcpEstablishedSeconds + 2) * Second));
    }

    [Theory]
    [InlineData(TcpHeader.Fin | TcpHeader.Ack, Conntrack.TcpClosingSeconds)]
    [InlineData(TcpHeader.Rst, Conntrack.TcpResetSeconds)]
    public void A_tcp_connection_that_ends_is_forgotten_after_linuxs_closing_time(byte ending, int seconds)
    {
        _conntrack.Track(Tcp(true, TcpHeader.Syn), true, 0);
        _conntrack.Track(Tcp(false, TcpHeader.Syn | TcpHeader.Ack), false, 0);
        _conntrack.Track(Tcp(true, ending), true, 0);
        Assert.Equal(ConnectionState.Established, _conntrack.StateOf([], Tcp(false, TcpHeader.Ack), false, (seconds - 1) * Second));
        Assert.Equal(ConnectionState.New, _conntrack.StateOf([], Tcp(false, TcpHeader.Ack), false, (seconds + 1) * Second));

        // The same port pair opened again by a new SYN lives the long life again.
        _conntrack.Track(Tcp(true, TcpHeader.Syn), true, seconds * Second);
        _conntrack.Track(Tcp(false, TcpHeader.Syn | TcpHeader.Ack), false, seconds * Second);
        Assert.Equal(ConnectionState.Established, _conntrack.StateOf([], Tcp(false, TcpHeader.Ack), false, (seconds + 3600) * Second));
    }

    [Fact]
    public void The_listing_names_each_tcp_connections_state_as_linux_does_and_the_seconds_it_has_left()
    {
        const byte Syn = TcpHeader.Syn, Ack = TcpHeader.Ack, Fin = TcpHeader.Fin | TcpHeader.Ack;
        _conntrack.Track(Tcp(true, Syn, ourPort: 1), true, 0);                    // we called, no answer yet
        _conntrack.Track(Tcp(true, Syn, ourPort: 2), true, 0);                    // answered
        _conntrack.Track(Tcp(false, (byte)(Syn | Ack), ourPort: 2), false, 0);
        _conntrack.Track(Tcp(false, Syn, ourPort: 3), false, 0);                  // they called, we answered, they closed
        _conntrack.Track(Tcp(true, (byte)(Syn | Ack), ourPort: 3), true, 0);
        _conntrack.Track(Tcp(false, Fin, ourPort: 3), false, 0);
        var flows = new List<TrackedFlow>();
        Assert.Equal(-1, _conntrack.List(0, int.MaxValue, flows, 10 * Second));
        var byPort = flows.ToDictionary(f => f.Key.LocalPort);
        Assert.Equal(("SYN_SENT", false, true, Conntrack.TcpUnrepliedSeconds - 10), (byPort[1].State, byPort[1].Replied, byPort[1].OriginLocal, byPort[1].SecondsLeft));
        Assert.Equal(("ESTABLISHED", true, Conntrack.TcpEstablishedSeconds - 10), (byPort[2].State, byPort[2].Replied, byPort[2].SecondsLeft));
        Assert.Equal(("FIN_WAIT", false), (byPort[3].State, byPort[3].OriginLocal));

        _conntrack.Track(Tcp(true, Fin, ourPort: 3), true, 10 * Second);          // and we answered with ours
        _conntrack.Track(Tcp(false, Fin, ourPort: 2), false, 10 * Second);        // the one we called closes on us
        _conntrack.Track(Tcp(false, TcpHeader.Rst, ourPort: 1), false, 10 * Second);
        flows.Clear();
        _conntrack.List(0, int.MaxValue, flows, 10 * Second);
        byPort = flows.ToDictionary(f => f.Key.LocalPort);
        Assert.Equal(("TIME_WAIT", Conntrack.TcpClosingSeconds), (byPort[3].State, byPort[3].SecondsLeft));
        Assert.Equal("CLOSE_WAIT", byPort[2].State);
        Assert.Equal(("CLOSE", Conntrack.TcpResetSeconds), (byPort[1].State, byPort[1].SecondsLeft));
    }

    [Fact]
    public void A_full_table_tracks_no_more_and_says_so()
    {
        for (ushort port = 1; port <= 6; port++)
        {
            _conntrack.Track(Udp(true, ourPort: port), true, 0);
        }
        Assert.Equal(4, _conntrack.Count);
        Assert.Equal(2, _conntrack.TableFull);
    }

    [Fact]
    public void An_icmp_error_quoting_a_tracked_flow_is_related_and_one_quoting_nothing_is_invalid()
    {
        _conntrack.Track(Udp(true), true, 0);
        Assert.Equal(ConnectionState.Related, _conntrack.StateOf(Unreachable(5000), ParseUnreachable(5000), false, 1));
        Assert.Equal(ConnectionState.Invalid, _conntrack.StateOf(Unreachable(5999), ParseUnreachable(5999), false, 1));
    }

    private static byte[] Unreachable(ushort ourPort)
    {
        var offending = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + 4];
        EthernetHeader.Write(offending, MacAddress.Parse("02:00:00:00:00:02"), MacAddress.Parse("02:00:00:00:00:01"), EtherTypes.IPv4);
        UdpPacketBuilder.WriteHeaders(offending.AsSpan(EthernetHeader.Size), Us, ourPort, Them, 53, 4);
        PacketParser.Parse(offending, out var parsed);
        // The peer's answer to the datagram we sent: from them to us, quoting it.
        var icmp = new byte[128];
        int length = ControlFrames.PortUnreachableV4(offending, parsed, icmp, MacAddress.Parse("02:00:00:00:00:02"));
        return icmp[..length];
    }

    private static ParsedPacket ParseUnreachable(ushort ourPort)
    {
        PacketParser.Parse(Unreachable(ourPort), out var packet);
        return packet;
    }
}
