using System.Buffers.Binary;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;
using Norman.Daemon.Tests.Dataplane;

namespace Norman.Daemon.Tests.Policy;

/// <summary>
/// Where nft's words used to mean something else in Norman (the filter-semantics issue): each case as nft decides it,
/// through the engine's filter with real frames.
/// </summary>
public sealed class NftSemanticsTests : IDisposable
{
    private readonly EngineHarness _wire = new();
    private readonly PolicyStore _policy;

    public NftSemanticsTests()
    {
        _wire.ResolvePeer();
        _policy = new PolicyStore(_wire.Engine, _wire.Names, null);
    }

    public void Dispose() => _wire.Dispose();

    private void Rule(string rule) => _policy.Add(Chain.Ingress, FilterRuleParser.Words(rule));

    private RuleCounters Counters(int index) => _policy.List().Rules[index].Counters;

    private byte[] Tcp(byte flags, ushort destinationPort = 80)
    {
        var frame = new byte[EthernetHeader.Size + TcpSegmentBuilder.HeaderLength];
        EthernetHeader.Write(frame, _wire.Engine.Host.Mac, _wire.Peer.Mac, EtherTypes.IPv4);
        TcpSegmentBuilder.Write(frame.AsSpan(EthernetHeader.Size), EngineHarness.PeerAddress, 40000, EngineHarness.HostAddress, destinationPort,
            new TcpSegmentFields(1, 1, flags, 100), [], 0, identification: 1);
        return frame;
    }

    [Fact]
    public void Tcp_flags_as_a_list_means_any_of_them_and_equals_means_exactly()
    {
        Rule("tcp flags fin,rst count");
        Rule("tcp flags == fin count");
        Rule("tcp flags & (fin|ack) == fin|ack count");
        _wire.Peer.SendFrame(Tcp(TcpHeader.Fin | TcpHeader.Ack));
        _wire.Peer.SendFrame(Tcp(TcpHeader.Ack));
        _wire.Breathe();

        Assert.Equal(1, Counters(0).Packets); // FIN+ACK has fin: it matches fin,rst (as nft reads it; Norman read "all of")
        Assert.Equal(0, Counters(1).Packets); // not exactly FIN
        Assert.Equal(1, Counters(2).Packets);
    }

    [Fact]
    public void Not_equal_compares_the_whole_value_as_nft_compiles_it()
    {
        Rule("tcp flags != ack count");           // not exactly ACK: FIN+ACK matches, a pure ACK does not
        Rule("tcp flags & (ack) == 0 count");     // without ACK at all: neither does
        Rule("ct state != new,invalid count");    // no packet has both states at once: every packet matches
        _wire.Peer.SendFrame(Tcp(TcpHeader.Fin | TcpHeader.Ack));
        _wire.Peer.SendFrame(Tcp(TcpHeader.Ack));
        _wire.Breathe();

        Assert.Equal(1, Counters(0).Packets);
        Assert.Equal(0, Counters(1).Packets);
        Assert.Equal(2, Counters(2).Packets);
    }

    [Fact]
    public void A_packet_limit_without_a_burst_lets_five_through_back_to_back_as_nft_does()
    {
        _wire.Bind(5000);
        Rule("udp dport 5000 limit rate 10/second count");
        for (int i = 0; i < 20; i++)
        {
            _wire.Peer.SendUdp(40000, 5000, "x"u8);
        }
        _wire.Breathe();
        Assert.Equal(5, Counters(0).Packets);
    }

    [Fact]
    public void A_byte_limit_holds_a_units_rate_plus_its_burst_so_a_packet_larger_than_the_burst_still_passes()
    {
        _wire.Bind(5000);
        Rule("udp dport 5000 limit rate 1000 bytes/second burst 500 bytes count");
        for (int i = 0; i < 5; i++)
        {
            _wire.Peer.SendUdp(40000, 5000, new byte[600 - UdpPacketBuilder.HeaderLengthV4]);
        }
        _wire.Breathe();
        Assert.Equal(2, Counters(0).Packets);
    }

    [Fact]
    public void Ip_length_reads_the_ip_header_not_the_udp_length_and_bytes_are_counted_from_the_network_header()
    {
        _wire.Bind(5000);
        Rule("ip length 100-65535 count");
        // An IP packet of 120 bytes whose UDP header says 19: nft's ip length is 120.
        var frame = new byte[EthernetHeader.Size + 120];
        EthernetHeader.Write(frame, _wire.Engine.Host.Mac, _wire.Peer.Mac, EtherTypes.IPv4);
        UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), EngineHarness.PeerAddress, 40000, EngineHarness.HostAddress, 5000, 92);
        var udp = frame.AsSpan(EthernetHeader.Size + Ipv4Header.Size);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], 19);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], 0);
        _wire.Peer.SendFrame(frame);
        _wire.Breathe();

        Assert.Equal(1, Counters(0).Packets);
        Assert.Equal(120, Counters(0).Bytes); // not 134: the Ethernet header is not counted, as nft counts
    }

    [Fact]
    public void A_plain_reject_answers_tcp_with_port_unreachable_and_with_tcp_reset_with_a_reset()
    {
        Rule("tcp dport 80 reject");
        Rule("tcp dport 81 reject with tcp reset");
        _wire.Peer.SendFrame(Tcp(TcpHeader.Syn, 80));
        _wire.Peer.SendFrame(Tcp(TcpHeader.Syn, 81));
        _wire.Breathe();
        Assert.Equal(1, _wire.Peer.ReceivedPortUnreachable);
        Assert.Equal(1, _wire.Peer.ReceivedTcpResets);
    }

    [Fact]
    public void Reject_answers_to_one_peer_are_held_to_linuxs_icmp_ratelimit()
    {
        Rule("udp dport 80 reject");
        for (int i = 0; i < 50; i++)
        {
            _wire.Peer.SendUdp(40000, 80, "x"u8);
        }
        _wire.Breathe();
        // A burst of six, then one a second: the rest are counted, not sent.
        Assert.Equal(6, _wire.Peer.ReceivedPortUnreachable);
        Assert.Equal(44, _wire.Engine.Counters.RepliesRateLimited);
    }

    [Fact]
    public void Ct_state_invalid_drop_stops_a_first_syn_ack_that_new_would_have_let_through()
    {
        Rule("ct state invalid drop");
        Rule("ct state new count");
        _wire.Peer.SendFrame(Tcp(TcpHeader.Syn | TcpHeader.Ack));
        _wire.Peer.SendFrame(Tcp(TcpHeader.Syn | TcpHeader.Fin));
        _wire.Peer.SendFrame(Tcp(TcpHeader.Syn));
        _wire.Breathe();
        Assert.Equal(2, Counters(0).Packets);
        Assert.Equal(1, Counters(1).Packets);
    }
}
