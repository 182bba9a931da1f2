using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;

namespace Norman.Daemon.Tests.Dataplane.Stages;

public sealed class ParseStageTests : IDisposable
{
    private readonly StageRig _rig = new();
    private readonly ParseStage _stage;

    public ParseStageTests() => _stage = new ParseStage(_rig.Counters, _rig.Host);

    public void Dispose() => _rig.Dispose();

    [Fact]
    public void A_good_frame_goes_on_parsed_and_each_bad_one_stops_here_with_its_reason_counted()
    {
        int good = _rig.Receive(StageRig.UdpFromPeer(53));
        int otherMac = _rig.Receive(StageRig.Udp(StageRig.PeerAddress, 1, StageRig.HostAddress, 53, to: MacAddress.Parse("02:00:00:00:00:99")));
        int broadcast = _rig.Receive(StageRig.Udp(StageRig.PeerAddress, 1, StageRig.HostAddress, 53, to: MacAddress.Broadcast));
        int truncated = _rig.Receive(StageRig.UdpFromPeer(53).AsSpan(0, EthernetHeader.Size + 10));
        int jumbo = _rig.Receive(StageRig.UdpFromPeer(53, payloadLength: 1600));

        _stage.Run(_rig.Batch);

        Assert.False(_rig.Batch.IsDone(good));
        Assert.Equal(PacketKind.Udp, _rig.Batch.Parsed(good).Kind);
        Assert.Equal(53, _rig.Batch.Parsed(good).DestinationPort);
        Assert.False(_rig.Batch.IsDone(broadcast));
        Assert.Equal(DropReason.NotForThisHost, _rig.Batch.DropReasonOf(otherMac));
        Assert.Equal(DropReason.TruncatedIp, _rig.Batch.DropReasonOf(truncated));
        Assert.Equal(DropReason.FrameTooLong, _rig.Batch.DropReasonOf(jumbo));
        Assert.Equal(1, _rig.Counters.Drops(DropReason.NotForThisHost));
        Assert.Equal(1, _rig.Counters.Drops(DropReason.TruncatedIp));
        Assert.Equal(1, _rig.Counters.Drops(DropReason.FrameTooLong));
    }

    [Theory]
    [InlineData(0, false)]  // priority only: taken as untagged, as Linux does
    [InlineData(5, true)]   // a VLAN this host has no interface for
    public void A_tagged_frame_is_taken_only_for_vlan_0(ushort vlan, bool dropped)
    {
        var untagged = StageRig.UdpFromPeer(53);
        var tagged = new byte[untagged.Length + VlanTag.Size];
        untagged.AsSpan(0, 12).CopyTo(tagged);
        tagged[12] = 0x81;
        tagged[13] = 0x00;
        tagged[14] = (byte)(vlan >> 8);
        tagged[15] = (byte)vlan;
        untagged.AsSpan(12).CopyTo(tagged.AsSpan(16));
        int index = _rig.Receive(tagged);

        _stage.Run(_rig.Batch);

        Assert.Equal(dropped, _rig.Batch.IsDone(index));
        Assert.Equal(dropped ? 1 : 0, _rig.Counters.Drops(DropReason.VlanNotConfigured));
    }
}
