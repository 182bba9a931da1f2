using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane.Stages;

/// <summary>Egress's anti-spoofing: the scheduler's copies are checked against the socket that sent them.</summary>
public sealed class ValidateStageTests : IDisposable
{
    private readonly StageRig _rig = new();
    private readonly ValidateStage _stage;
    private readonly AppSide _app;

    public ValidateStageTests()
    {
        _stage = new ValidateStage(_rig.Counters, _rig.Sockets, _rig.Host);
        _app = _rig.Bind(5000);
    }

    public void Dispose() => _rig.Dispose();

    /// <summary>A packet as the scheduler copies it: IP onwards behind room for an Ethernet header, owned by the socket.</summary>
    private int Sent(byte[] frame)
    {
        frame.AsSpan(0, EthernetHeader.Size).Clear();
        int index = _rig.Receive(frame);
        _rig.Batch.SocketSlot(index) = _app.Socket.Pipe.Slot;
        return index;
    }

    [Fact]
    public void Only_the_sockets_own_well_formed_packets_go_on()
    {
        int own = Sent(StageRig.Udp(StageRig.HostAddress, 5000, StageRig.PeerAddress, 9));
        int otherPort = Sent(StageRig.Udp(StageRig.HostAddress, 5001, StageRig.PeerAddress, 9));
        int otherAddress = Sent(StageRig.Udp(NetAddress.Parse("198.18.0.77"), 5000, StageRig.PeerAddress, 9));
        var truncated = StageRig.Udp(StageRig.HostAddress, 5000, StageRig.PeerAddress, 9);
        int malformed = Sent(truncated[..(EthernetHeader.Size + 24)]);
        int tooBig = Sent(StageRig.Udp(StageRig.HostAddress, 5000, StageRig.PeerAddress, 9, payloadLength: 1500));

        _stage.Run(_rig.Batch, first: 0);

        Assert.False(_rig.Batch.IsDone(own));
        Assert.Equal(IpProtocols.Udp, _rig.Batch.Parsed(own).Protocol);
        Assert.True(_rig.Batch.IsDone(otherPort));
        Assert.True(_rig.Batch.IsDone(otherAddress));
        Assert.True(_rig.Batch.IsDone(malformed));
        Assert.True(_rig.Batch.IsDone(tooBig));
        var counters = _app.Socket.Pipe.Counters;
        Assert.Equal(2, counters.Drops(DropReason.TxSpoofedSource));
        Assert.Equal(1, counters.Drops(DropReason.TxMalformed));
        Assert.Equal(1, counters.Drops(DropReason.TxTooBig));
        Assert.Equal(2, _rig.Counters.Drops(DropReason.TxSpoofedSource));
    }

    [Fact]
    public void Frames_before_first_are_not_the_schedulers_and_are_left_alone()
    {
        int hostsOwn = Sent(StageRig.Udp(StageRig.HostAddress, 68, StageRig.PeerAddress, 67));
        int own = Sent(StageRig.Udp(StageRig.HostAddress, 5000, StageRig.PeerAddress, 9));

        _stage.Run(_rig.Batch, first: 1);

        Assert.False(_rig.Batch.IsDone(hostsOwn));
        Assert.False(_rig.Batch.IsDone(own));
    }
}
