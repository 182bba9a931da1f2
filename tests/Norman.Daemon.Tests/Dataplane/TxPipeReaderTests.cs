using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>
/// The TX pipe read as hostile memory: a slot's length is read once, and the copy goes by that length, never by the
/// field read again; a pipe of garbage costs its neighbours a bounded look per breath.
/// </summary>
public sealed unsafe class TxPipeReaderTests : IDisposable
{
    private readonly EngineHarness _wire = new(slotCount: 1024);

    public void Dispose() => _wire.Dispose();

    [Fact]
    public void A_length_changed_after_it_was_read_does_not_change_what_is_copied()
    {
        var app = _wire.Bind(5000);
        app.Send(Enumerable.Repeat((byte)0xA5, 300).ToArray(), EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9);
        var pipe = app.Socket.Pipe;
        var counters = new DataplaneCounters();
        int waiting = TxPipeReader.Waiting(pipe, counters);
        int badSlots = 0;
        int frameLength = TxPipeReader.HeadFrameLength(pipe, counters, ref waiting, ref badSlots);
        Assert.Equal(EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + 300, frameLength);

        // The application shortens the slot between the look and the copy; the batch's buffer holds an older frame.
        byte* slot = app.RegionAddress + app.TxSlotsOffset;
        var written = new ReadOnlySpan<byte>(slot + PipeLayout.SlotHeaderSize, UdpPacketBuilder.HeaderLengthV4 + 300).ToArray();
        *(uint*)(slot + PipeLayout.SlotLengthOffset) = UdpPacketBuilder.HeaderLengthV4;
        var batch = new PacketBatch();
        batch.NextBuffer().Fill(0xEE);
        TxPipeReader.CopyHead(pipe, batch, frameLength);

        Assert.Equal(frameLength, batch.Length(0));
        Assert.Equal(written, batch.Frame(0)[EthernetHeader.Size..].ToArray());
    }

    [Fact]
    public void A_pipe_of_bad_slots_is_skipped_a_bounded_number_a_breath_and_its_neighbour_is_served_in_the_same_breath()
    {
        var garbage = _wire.Bind(5001);
        var neighbour = _wire.Bind(5002);
        _wire.ResolvePeer();
        // A thousand slots whose length no slot can hold, all posted at once.
        byte* ring = garbage.RegionAddress + garbage.TxRingOffset;
        for (int i = 0; i < 1000; i++)
        {
            *(uint*)(garbage.RegionAddress + garbage.TxSlotsOffset + (long)i * PipeLayout.DefaultSlotSize + PipeLayout.SlotLengthOffset) = uint.MaxValue;
        }
        Volatile.Write(ref *(uint*)(ring + PipeLayout.ProducerIndexOffset), 1000u);
        neighbour.Send("served"u8, EngineHarness.HostAddress, 5002, EngineHarness.PeerAddress, 9);

        _wire.Engine.DoWork();

        Assert.Equal(1, _wire.Peer.ReceivedUdpPackets);
        var counters = garbage.Socket.Pipe.Counters;
        Assert.Equal(TxPipeReader.MaxBadSlotsPerBreath, counters.Drops(DropReason.TxCorruptLength));
        Assert.Equal(1, counters.TxThrottled);

        // The rest is skipped, a bound's worth a breath, and counted.
        for (int breath = 0; breath < 1000 / TxPipeReader.MaxBadSlotsPerBreath + 1; breath++)
        {
            _wire.Engine.DoWork();
        }
        Assert.Equal(1000, counters.Drops(DropReason.TxCorruptLength));
        Assert.Empty(neighbour.Socket.Pipe.Counters.DropSnapshot());
    }
}
