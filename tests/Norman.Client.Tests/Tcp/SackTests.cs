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

/// <summary>SACK as a sender (RFC 6675's NextSeg, rule 1): holes below what the peer SACKed are sent again within the same recovery.</summary>
public sealed class SackRecoveryTests
{
    private const int Segment = 1460 - TcpOptions.TimestampsLength;

    [Fact]
    public void Two_losses_in_one_window_are_both_sent_again_before_any_partial_acknowledgement()
    {
        var sent = LoseSegmentsZeroAndFour(sack: true, out var peer);
        // The first loss at the third duplicate ACK, the second as soon as the blocks show a hole below them; never the
        // segments the peer said it holds.
        Assert.Equal([peer.OurNext, peer.OurNext + 4 * Segment], sent.Where(s => s.Payload.Length > 0).Select(s => s.Sequence).Take(2));
        Assert.DoesNotContain(sent, s => s.Payload.Length > 0 && s.Sequence is var q && q != peer.OurNext && q != peer.OurNext + 4 * Segment
            && q - peer.OurNext < 10 * Segment);
    }

    [Fact]
    public void Without_sack_the_second_loss_waits_for_the_partial_acknowledgement()
    {
        var sent = LoseSegmentsZeroAndFour(sack: false, out var peer);
        var again = sent.Where(s => s.Payload.Length > 0 && s.Sequence - peer.OurNext < 10 * Segment).Select(s => s.Sequence).ToList();
        Assert.Equal([peer.OurNext], again); // NewReno: one a round trip
    }

    /// <summary>
    /// Ten segments out; the peer gets all but the first and the fifth, answering each with a duplicate ACK (with SACK
    /// blocks when in use). Returns what the connection sent meanwhile.
    /// </summary>
    private static List<SentSegment> LoseSegmentsZeroAndFour(bool sack, out ScriptedPeer peer)
    {
        peer = new ScriptedPeer();
        peer.Establish(timestamp: 10, sackPermitted: sack);
        peer.Write(new byte[10 * Segment]);
        var first = peer.Take().Where(s => s.Payload.Length > 0).ToList();
        Assert.Equal(10, first.Count);
        Assert.All(first, s => Assert.Equal(Segment, s.Payload.Length));
        var blocks = new List<(uint Left, uint Right)>();
        foreach (int arrived in new[] { 1, 2, 3, 5, 6, 7, 8, 9 })
        {
            uint left = peer.OurNext + (uint)(arrived * Segment);
            blocks.Add((left, left + Segment));
            peer.Connection.OnSegment(DuplicateAck(peer, sack ? Merge(blocks) : []), peer.Now);
        }
        return peer.Take();
    }

    private static (uint Left, uint Right)[] Merge(List<(uint Left, uint Right)> blocks)
    {
        var merged = new List<(uint Left, uint Right)>();
        foreach (var block in blocks.OrderBy(b => b.Left))
        {
            if (merged.Count > 0 && merged[^1].Right == block.Left)
            {
                merged[^1] = (merged[^1].Left, block.Right);
            }
            else
            {
                merged.Add(block);
            }
        }
        merged.Reverse(); // the latest (highest) first, as a receiver reports them
        return [.. merged.Take(3)];
    }

    private static TcpSegment DuplicateAck(ScriptedPeer peer, (uint Left, uint Right)[] blocks)
    {
        var options = new byte[40];
        TcpOptions.WriteTimestamps(options, 11, 0);
        int length = TcpOptions.TimestampsLength + (blocks.Length > 0 ? TcpOptions.WriteSack(options.AsSpan(TcpOptions.TimestampsLength), blocks) : 0);
        return new TcpSegment
        {
            Sequence = peer.PeerNext,
            Acknowledgement = peer.OurNext,
            Flags = TcpHeader.Ack,
            Window = 65535,
            Options = options.AsSpan(0, length),
            HasTimestamps = true,
            TimestampValue = 11,
        };
    }
}
