using Norman.Client.Tcp;
using Norman.Core.Packets;

namespace Norman.Client.Tests.Tcp;

/// <summary>Timestamps as RFC 7323 has them: negotiated on the SYNs, on every segment after, and PAWS against old duplicates.</summary>
public sealed class TimestampsTests
{
    private readonly ScriptedPeer _peer = new();

    [Fact]
    public void Without_the_peer_offering_them_no_segment_carries_timestamps()
    {
        var synAck = _peer.Establish();
        Assert.False(synAck.ReadOptions().HasTimestamps);
        _peer.Write(new byte[3000]);
        var data = _peer.Take().Where(s => s.Payload.Length > 0).ToList();
        Assert.All(data, s => Assert.Equal(0, s.OptionsLength));
        Assert.Equal(1460, data[0].Payload.Length);
        Assert.DoesNotContain("ts ", _peer.Connection.Describe());
    }

    [Fact]
    public void Offered_by_both_every_segment_carries_our_clock_and_echoes_the_peer_s_and_the_mss_makes_room()
    {
        var synAck = _peer.Establish(timestamp: 5000);
        var offered = synAck.ReadOptions();
        Assert.True(offered.HasTimestamps);
        Assert.Equal(5000u, offered.TimestampEcho);

        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, _peer.OurNext, 65535, "hello"u8.ToArray(), timestamp: 5007, echo: offered.TimestampValue);
        _peer.PeerNext += 5;
        _peer.Advance(TimeSpan.FromMilliseconds(300)); // the delayed ACK
        _peer.Write(new byte[3000]);
        var sent = _peer.Take();
        Assert.All(sent, s => Assert.Equal(TcpOptions.TimestampsLength, s.OptionsLength));
        Assert.All(sent, s => Assert.Equal(5007u, s.ReadOptions().TimestampEcho));
        // Our clock moved with the test's: the data, 300 ms later, is stamped 300 more than the SYN-ACK (the origin is random).
        var data = sent.Where(s => s.Payload.Length > 0).ToList();
        Assert.All(data, s => Assert.InRange(s.ReadOptions().TimestampValue - offered.TimestampValue, 299u, 301u));
        Assert.Equal(1460 - TcpOptions.TimestampsLength, data[0].Payload.Length);
        Assert.Contains("ts cubic", _peer.Connection.Describe());
    }

    [Fact]
    public void An_old_duplicate_is_dropped_by_paws_and_answered_with_an_ack()
    {
        _peer.Establish(timestamp: 5000);
        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, _peer.OurNext, 65535, "new"u8.ToArray(), timestamp: 6000);
        _peer.PeerNext += 3;
        Assert.Equal("new"u8.ToArray(), _peer.Read());
        _peer.Take();

        // Bytes at the next sequence number, but stamped before the last segment: a segment from an earlier pass of the
        // sequence space (or a forger who does not know the clock). Dropped, and the peer told where we are.
        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, _peer.OurNext, 65535, "old"u8.ToArray(), timestamp: 5999);
        var answer = Assert.Single(_peer.Take());
        Assert.Equal(TcpHeader.Ack, answer.Flags);
        Assert.Equal(_peer.PeerNext, answer.Acknowledgement);
        Assert.Equal(6000u, answer.ReadOptions().TimestampEcho);
        Assert.Contains("paws 1", _peer.Connection.Describe());

        // The same bytes stamped now are taken.
        _peer.Send(TcpHeader.Ack | TcpHeader.Psh, _peer.PeerNext, _peer.OurNext, 65535, "now"u8.ToArray(), timestamp: 6001);
        Assert.Equal("now"u8.ToArray(), _peer.Read());
    }

    [Fact]
    public void A_reset_is_never_dropped_by_paws()
    {
        _peer.Establish(timestamp: 5000);
        _peer.Send(TcpHeader.Rst, _peer.PeerNext, 0, 0, timestamp: 1);
        Assert.Equal(TcpState.Closed, _peer.Connection.State);
    }
}
