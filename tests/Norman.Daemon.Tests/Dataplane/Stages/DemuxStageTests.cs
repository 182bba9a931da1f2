using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane.Stages;

public sealed class DemuxStageTests : IDisposable
{
    private readonly StageRig _rig = new();
    private readonly DemuxStage _stage;

    public DemuxStageTests() => _stage = new DemuxStage(_rig.Counters, _rig.Lookup, _rig.Host);

    public void Dispose() => _rig.Dispose();

    [Fact]
    public void Each_datagram_is_given_its_socket_a_connected_one_before_the_listener_and_none_for_a_closed_port()
    {
        var listener = _rig.Bind(53);
        var connected = _rig.Bind(53, remote: StageRig.PeerAddress, remotePort: 40000);
        int fromConnectedPeer = _rig.ReceiveParsed(StageRig.UdpFromPeer(53));
        int fromStranger = _rig.ReceiveParsed(StageRig.Udp(NetAddress.Parse("198.18.0.7"), 40000, StageRig.HostAddress, 53));
        int closedPort = _rig.ReceiveParsed(StageRig.UdpFromPeer(54));
        int notOurs = _rig.ReceiveParsed(StageRig.Udp(StageRig.PeerAddress, 40000, NetAddress.Parse("198.18.0.9"), 53));

        _stage.Run(_rig.Batch);

        Assert.Equal(connected.Socket.Pipe.Slot, _rig.Batch.SocketSlot(fromConnectedPeer));
        Assert.Equal(listener.Socket.Pipe.Slot, _rig.Batch.SocketSlot(fromStranger));
        // Demux only looks up: what found nothing is left for the host stage to answer.
        Assert.Equal(-1, _rig.Batch.SocketSlot(closedPort));
        Assert.False(_rig.Batch.IsDone(closedPort));
        Assert.Equal(-1, _rig.Batch.SocketSlot(notOurs));
    }

    [Fact]
    public void A_bad_checksum_is_dropped_unless_the_port_vouches_for_it()
    {
        _rig.Bind(53);
        var corrupt = StageRig.UdpFromPeer(53);
        corrupt[^1] ^= 0xFF;
        var corruptTcp = StageRig.TcpFromPeer(80, TcpHeader.Syn);
        corruptTcp[^1] ^= 0xFF;
        int checkedHere = _rig.ReceiveParsed(corrupt);
        int tcp = _rig.ReceiveParsed(corruptTcp);
        int vouched = _rig.ReceiveParsed(corrupt);
        _rig.Batch.MarkChecksumTrusted(vouched);

        _stage.Run(_rig.Batch);

        Assert.Equal(DropReason.BadUdpChecksum, _rig.Batch.DropReasonOf(checkedHere));
        Assert.Equal(DropReason.BadTcpChecksum, _rig.Batch.DropReasonOf(tcp));
        Assert.False(_rig.Batch.IsDone(vouched));
        Assert.Equal(1, _rig.Counters.Drops(DropReason.BadUdpChecksum));
        Assert.Equal(1, _rig.Counters.Drops(DropReason.BadTcpChecksum));
    }
}
