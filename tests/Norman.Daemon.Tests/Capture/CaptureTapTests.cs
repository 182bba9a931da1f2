using Norman.Core.Capture;
using Norman.Daemon.Capture;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;
using Norman.Daemon.Tests.Policy;

namespace Norman.Daemon.Tests.Capture;

public sealed class CaptureTapTests
{
    private static readonly Lazy<IReadOnlyList<FrameCorpus.Frame>> Corpus = new(() => FrameCorpus.Build());

    /// <summary>
    /// A tap passes over whole batches whose protocols its filter rejects unread (<see cref="ProtocolMix"/>): offered the
    /// corpus in batches of one kind of frame after another (so that whole batches are passed over) and shuffled (so
    /// that none is), it keeps exactly the frames libpcap keeps.
    /// </summary>
    [Theory]
    [MemberData(nameof(BpfTests.Expressions), MemberType = typeof(BpfTests))]
    public void A_tap_keeps_what_libpcap_keeps_whether_batches_are_passed_over_or_not(string expression)
    {
        using var libpcap = PcapFilter.Reference(expression);
        var frames = Corpus.Value.Where(f => f.Bytes.Length <= PacketBatch.FrameSize).ToList();
        int expected = frames.Count(f => libpcap.Matches(f.Bytes, f.Bytes.Length));
        var byKind = frames.OrderBy(f => f.Bytes.Length < 24 ? -1 : f.Bytes[12] << 16 | f.Bytes[13] << 8 | f.Bytes[f.Bytes[12] == 0x86 ? 20 : 23]).ToList();
        Assert.Equal(expected, Captured(expression, byKind));
        Assert.Equal(expected, Captured(expression, frames));
    }

    [Fact]
    public void A_batch_of_one_protocol_is_passed_over_only_by_a_filter_that_rejects_it_unread()
    {
        var udp = new byte[64];
        udp[12] = 0x08; // IPv4
        udp[23] = 17;
        var tcp = (byte[])udp.Clone();
        tcp[23] = 6;
        var batch = new PacketBatch();
        Add(batch, udp);
        var mix = ProtocolMix.Of(batch);
        var tcpPort9 = new ProtocolVerdicts(PcapFilter.Compile("tcp port 9"));
        Assert.Equal(0UL, mix.Ipv4 & tcpPort9.Ipv4MayKeep);
        Add(batch, tcp);
        Assert.NotEqual(0UL, ProtocolMix.Of(batch).Ipv4 & tcpPort9.Ipv4MayKeep);
        var short_ = new PacketBatch();
        Add(short_, udp.AsSpan(0, 20).ToArray());
        Assert.True(ProtocolMix.Of(short_).Other); // too short to tell: never passed over
    }

    private static long Captured(string expression, IReadOnlyList<FrameCorpus.Frame> frames)
    {
        using var tap = new CaptureTap(1, expression, CaptureRecord.MaxSnapLength, inbound: true, outbound: false, onlyUid: -1, onlyAppId: -1);
        var sockets = new SocketSet();
        var batch = new PacketBatch();
        long clock = 0;
        foreach (var chunk in frames.Chunk(PacketBatch.Capacity))
        {
            batch.Clear();
            foreach (var frame in chunk)
            {
                Add(batch, frame.Bytes);
            }
            tap.OfferBatch(batch, ProtocolMix.Of(batch), CaptureRecord.Inbound, sockets, ref clock);
        }
        Assert.Equal(0, tap.Dropped); // the ring holds the whole corpus: every miss would be the filter's
        return tap.Captured;
    }

    private static void Add(PacketBatch batch, byte[] frame)
    {
        frame.CopyTo(batch.NextBuffer());
        batch.Append(frame.Length);
    }
}
