using Norman.Client.Tcp;
using Norman.Core.Packets;

namespace Norman.Client.Tests.Tcp;

/// <summary>What a peer may not make a connection do: cut data into tiny segments, hold it forever, or guess where it starts.</summary>
public sealed class PeerLimitsTests
{
    private readonly ScriptedPeer _peer = new();

    [Fact]
    public void A_syn_with_an_mss_of_one_is_held_to_the_floor_of_forty_eight_bytes()
    {
        _peer.Establish(mss: 1);
        _peer.Write(new byte[200]);

        var segments = _peer.Take().Where(s => s.Payload.Length > 0).ToList();
        Assert.Equal(200, segments.Sum(s => s.Payload.Length));
        Assert.All(segments, s => Assert.True(s.Payload.Length <= TcpLimits.MinimumSendMss));
        Assert.Equal((200 + TcpLimits.MinimumSendMss - 1) / TcpLimits.MinimumSendMss, segments.Count);
    }

    [Fact]
    public void An_orphan_in_fin_wait_2_whose_peer_never_sends_its_fin_is_gone_after_sixty_seconds()
    {
        _peer.Establish();
        _peer.Connection.ShutdownSend();
        _peer.Connection.Orphan();
        _peer.Serve();
        var fin = Assert.Single(_peer.Take());
        Assert.True(fin.Has(TcpHeader.Fin));
        _peer.Send(TcpHeader.Ack, _peer.PeerNext, fin.Sequence + 1, 65535);
        Assert.Equal(TcpState.FinWait2, _peer.Connection.State);

        _peer.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(TcpState.FinWait2, _peer.Connection.State);
        _peer.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(TcpState.Closed, _peer.Connection.State);
        Assert.Equal(1, _peer.Forgotten);
        Assert.Empty(_peer.Take()); // gone without a word, as Linux's tcp_fin_timeout
    }

    [Fact]
    public void A_connection_the_application_still_holds_stays_in_fin_wait_2_as_a_half_close_on_linux_does()
    {
        _peer.Establish();
        _peer.Connection.ShutdownSend();
        _peer.Serve();
        var fin = Assert.Single(_peer.Take());
        _peer.Send(TcpHeader.Ack, _peer.PeerNext, fin.Sequence + 1, 65535);

        _peer.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(TcpState.FinWait2, _peer.Connection.State);
        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, fin.Sequence + 1, 65535, "still here"u8.ToArray());
        Assert.Equal("still here"u8.ToArray(), _peer.Read());
    }

    [Fact]
    public void A_syn_sent_again_while_our_syn_ack_is_out_gets_the_syn_ack_again_at_once()
    {
        _peer.Connection.Accept(new TcpSegment { Sequence = ScriptedPeer.PeerIss, Flags = TcpHeader.Syn, Window = 65535, Mss = 1460, WindowScale = 7 }, _peer.Now);
        var synAck = Assert.Single(_peer.Take());

        _peer.Send(TcpHeader.Syn, ScriptedPeer.PeerIss, 0, 65535, mss: 1460, windowScale: 7);

        var again = Assert.Single(_peer.Take());
        Assert.Equal(TcpHeader.Syn | TcpHeader.Ack, again.Flags);
        Assert.Equal(synAck.Sequence, again.Sequence);
        Assert.Equal(ScriptedPeer.PeerIss + 1, again.Acknowledgement);
    }

    [Fact]
    public void Initial_sequence_numbers_are_a_keyed_hash_of_the_four_tuple_plus_a_clock()
    {
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        var first = Enumerable.Range(0, 1000).Select(port => InitialSequence.For(ScriptedPeer.Local, 7000, ScriptedPeer.Remote, (ushort)(40000 + port), now)).ToList();

        Assert.Equal(1000, first.Distinct().Count());
        Assert.InRange(first.Count(isn => isn % 2 == 1), 400, 600); // not always even
        // The same four-tuple a second later starts further on: by the clock's 15.6 million ticks of 64 ns.
        uint later = InitialSequence.For(ScriptedPeer.Local, 7000, ScriptedPeer.Remote, 40000, now + System.Diagnostics.Stopwatch.Frequency);
        Assert.InRange(later - first[0], (1_000_000_000u >> 6) - 2, (1_000_000_000u >> 6) + 2);
    }

    [Fact]
    public void Each_connection_numbers_its_ip_datagrams_from_its_own_random_start()
    {
        var other = new ScriptedPeer();
        var ours = Enumerable.Range(0, 3).Select(_ => _peer.Connection.NextIdentification()).ToList();
        var theirs = Enumerable.Range(0, 3).Select(_ => other.Connection.NextIdentification()).ToList();

        Assert.Equal([ours[0], (ushort)(ours[0] + 1), (ushort)(ours[0] + 2)], ours);
        Assert.Equal([theirs[0], (ushort)(theirs[0] + 1), (ushort)(theirs[0] + 2)], theirs);
    }
}
