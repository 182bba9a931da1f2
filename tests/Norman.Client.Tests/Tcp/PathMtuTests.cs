using Norman.Client.Tcp;
using Norman.Core.Packets;

namespace Norman.Client.Tests.Tcp;

/// <summary>Path MTU discovery (RFC 8201): a packet-too-big lowers the MSS and what was in flight is sent again at the new size.</summary>
public sealed class PathMtuTests
{
    private readonly ScriptedPeer _peer = new();

    [Fact]
    public void A_packet_too_big_quoting_a_segment_in_flight_lowers_the_mss_and_resends_from_the_oldest_byte()
    {
        _peer.Establish(mss: 1440);
        _peer.Write(new byte[4 * 1440]);
        var first = _peer.Take();
        Assert.All(first, s => Assert.Equal(1440, s.Payload.Length));
        uint oldest = first[0].Sequence;

        _peer.Connection.OnPacketTooBig(1280, first[1].Sequence, _peer.Now);

        Assert.Equal(1280 - 40 - 20, _peer.Connection.SendMss);
        var again = _peer.Take();
        Assert.Equal(oldest, again[0].Sequence);
        Assert.All(again, s => Assert.True(s.Payload.Length <= 1220, $"{s.Payload.Length} bytes"));
        Assert.Equal(1, _peer.Connection.PathMtuReductions);
    }

    [Theory]
    [InlineData(1280, false)] // quoting a sequence number not in flight: forged, or stale (RFC 5927)
    [InlineData(1500, true)]  // an MTU the MSS already fits: nothing to lower
    [InlineData(9000, true)]  // and never raised by one
    public void A_packet_too_big_not_about_a_segment_in_flight_or_not_lowering_anything_changes_nothing(int mtu, bool inFlight)
    {
        _peer.Establish(mss: 1440);
        _peer.Write(new byte[2 * 1440]);
        var sent = _peer.Take();

        _peer.Connection.OnPacketTooBig(mtu, inFlight ? sent[0].Sequence : sent[0].Sequence - 100_000, _peer.Now);

        Assert.Equal(1440, _peer.Connection.SendMss);
        Assert.Empty(_peer.Take());
        Assert.Equal(0, _peer.Connection.PathMtuReductions);
    }
}
