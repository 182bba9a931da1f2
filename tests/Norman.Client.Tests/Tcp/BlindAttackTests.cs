using Norman.Client.Tcp;
using Norman.Core.Packets;

namespace Norman.Client.Tests.Tcp;

/// <summary>
/// An off-path attacker who knows the four-tuple but not the sequence numbers (RFC 5961): a reset must hit RCV.NXT
/// exactly, data must acknowledge something recent, and what the connection answers is rate-limited.
/// </summary>
public sealed class BlindAttackTests
{
    private readonly ScriptedPeer _peer = new();

    public BlindAttackTests() => _peer.Establish();

    [Fact]
    public void A_reset_in_the_window_but_not_at_rcv_nxt_draws_a_challenge_ack_and_the_connection_stays()
    {
        _peer.Send(TcpHeader.Rst, _peer.PeerNext + 100, 0, 0);

        var challenge = Assert.Single(_peer.Take());
        Assert.Equal(TcpHeader.Ack, challenge.Flags);
        Assert.Equal(_peer.PeerNext, challenge.Acknowledgement);
        Assert.Equal(_peer.OurNext, challenge.Sequence);
        Assert.Equal(TcpState.Established, _peer.Connection.State);
        Assert.Equal(1, _peer.Connection.ChallengeAcks);
        Assert.Equal(1, _peer.Connection.ResetsIgnored);

        // Still carries data, and the real peer's reset (at RCV.NXT, as it answers the challenge) ends it.
        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, _peer.OurNext, 65535, "hello"u8.ToArray());
        Assert.Equal("hello"u8.ToArray(), _peer.Read());
        _peer.PeerNext += 5;
        _peer.Send(TcpHeader.Rst, _peer.PeerNext, 0, 0);
        Assert.Equal(TcpState.Closed, _peer.Connection.State);
    }

    [Fact]
    public void A_reset_outside_the_window_is_dropped_without_an_answer()
    {
        _peer.Send(TcpHeader.Rst, _peer.PeerNext + (2u << 20), 0, 0);
        _peer.Send(TcpHeader.Rst, _peer.PeerNext - 1, 0, 0);

        Assert.Empty(_peer.Take());
        Assert.Equal(TcpState.Established, _peer.Connection.State);
        Assert.Equal(2, _peer.Connection.ResetsIgnored);
    }

    [Fact]
    public void Data_acknowledging_far_behind_snd_una_is_dropped_with_a_challenge_ack_and_never_delivered()
    {
        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, _peer.OurNext - (1u << 30), 65535, "INJECTED"u8.ToArray());

        var challenge = Assert.Single(_peer.Take());
        Assert.Equal(TcpHeader.Ack, challenge.Flags);
        Assert.Equal(_peer.PeerNext, challenge.Acknowledgement);
        Assert.False(_peer.Connection.HasUnreadData);
        Assert.Equal(1, _peer.Connection.ChallengeAcks);
    }

    [Fact]
    public void Data_acknowledging_a_little_behind_snd_una_within_the_peers_window_is_taken()
    {
        // [SND.UNA − MAX.SND.WND, SND.MAX] is acceptable: an old ACK on a segment that was reordered is not an attack.
        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, _peer.OurNext - 1000, 65535, "late"u8.ToArray());

        Assert.Equal("late"u8.ToArray(), _peer.Read());
    }

    [Fact]
    public void Ten_syns_or_ten_acks_outside_the_window_get_one_answer_and_another_after_half_a_second()
    {
        for (int i = 0; i < 10; i++)
        {
            _peer.Send(TcpHeader.Syn, _peer.PeerNext + 7, 0, 65535);
        }
        Assert.Single(_peer.Take());

        _peer.Advance(TimeSpan.FromMilliseconds(600));
        for (int i = 0; i < 10; i++)
        {
            _peer.Send(TcpHeader.Ack, _peer.PeerNext + (4u << 20), _peer.OurNext, 65535);
        }
        Assert.Single(_peer.Take());
    }

    [Fact]
    public void Old_data_is_always_answered_so_a_peer_whose_ack_was_lost_stops_sending_it_again()
    {
        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, _peer.OurNext, 65535, "once"u8.ToArray());
        _peer.Take();
        for (int i = 0; i < 3; i++)
        {
            _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext - 10_000, _peer.OurNext, 65535, "again"u8.ToArray());
        }

        Assert.Equal(3, _peer.Take().Count(s => s.Flags == TcpHeader.Ack && s.Acknowledgement == _peer.PeerNext + 4));
    }

    [Fact]
    public void Challenge_acks_of_all_a_carriers_connections_are_held_to_a_thousand_a_second()
    {
        var budget = new ChallengeAckBudget();
        long now = _peer.Now;
        int granted = Enumerable.Range(0, 5000).Count(_ => budget.Take(now));
        Assert.Equal(TcpLimits.ChallengeAcksPerSecond, granted);
        Assert.True(budget.Take(now + System.Diagnostics.Stopwatch.Frequency));
    }
}
