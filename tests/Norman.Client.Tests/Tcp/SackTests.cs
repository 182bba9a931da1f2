using Norman.Client.Tcp;
using Norman.Core.Packets;

namespace Norman.Client.Tests.Tcp;

/// <summary>SACK as a receiver (RFC 2018): negotiated on the SYNs; ACKs sent while data is kept out of order say what is kept.</summary>
public sealed class SackTests
{
    private readonly ScriptedPeer _peer = new();

    [Fact]
    public void Offered_by_the_peer_sack_is_permitted_back_and_each_duplicate_ack_names_the_blocks_held_latest_first()
    {
        var synAck = _peer.Establish(timestamp: 100, sackPermitted: true);
        Assert.True(synAck.ReadOptions().SackPermitted);
        Assert.Equal(20, synAck.OptionsLength); // MSS, window scale, SACK-permitted and timestamps: as Linux sends them
        uint next = _peer.PeerNext;

        // Segments 2, 4 and 3 of five arrive (1 and 5 are lost): 2 alone, then 4 apart, then 3 joins them into one block.
        var segment = new byte[100];
        _peer.Send(TcpHeader.Ack, next + 100, _peer.OurNext, 65535, segment, timestamp: 101);
        Assert.Equal([(next + 100, next + 200)], Assert.Single(_peer.Take()).SackBlocks());
        _peer.Send(TcpHeader.Ack, next + 300, _peer.OurNext, 65535, segment, timestamp: 102);
        Assert.Equal([(next + 300, next + 400), (next + 100, next + 200)], Assert.Single(_peer.Take()).SackBlocks());
        _peer.Send(TcpHeader.Ack, next + 200, _peer.OurNext, 65535, segment, timestamp: 103);
        var merged = Assert.Single(_peer.Take());
        Assert.Equal(next, merged.Acknowledgement);
        Assert.Equal([(next + 100, next + 400)], merged.SackBlocks());

        // The gap fills: everything is delivered, and the ACK has nothing left to name.
        _peer.Send(TcpHeader.Ack, next, _peer.OurNext, 65535, segment, timestamp: 104);
        var filled = Assert.Single(_peer.Take());
        Assert.Equal(next + 400, filled.Acknowledgement);
        Assert.Empty(filled.SackBlocks());
        Assert.Equal(400, _peer.Read().Length);
        Assert.Contains("ts sack cubic", _peer.Connection.Describe());
    }

    [Fact]
    public void Not_offered_by_the_peer_no_ack_carries_blocks()
    {
        var synAck = _peer.Establish();
        Assert.False(synAck.ReadOptions().SackPermitted);
        _peer.Send(TcpHeader.Ack, _peer.PeerNext + 100, _peer.OurNext, 65535, new byte[100]);
        Assert.Empty(Assert.Single(_peer.Take()).SackBlocks());
    }

    [Fact]
    public void At_most_four_blocks_without_timestamps_and_three_beside_them()
    {
        foreach (var (timestamp, blocks) in new[] { ((uint?)null, 4), (7u, 3) })
        {
            var peer = new ScriptedPeer();
            peer.Establish(timestamp: timestamp, sackPermitted: true);
            for (int hole = 0; hole < 6; hole++)
            {
                peer.Send(TcpHeader.Ack, peer.PeerNext + 200u * (uint)hole + 100, peer.OurNext, 65535, new byte[100], timestamp: timestamp);
            }
            var last = peer.Take()[^1];
            Assert.Equal(blocks, last.SackBlocks().Length);
            Assert.True(last.OptionsLength <= 40);
            Assert.Equal(peer.PeerNext + 1100, last.SackBlocks()[0].Left); // the latest first
        }
    }
}
