using System.Diagnostics;
using Norman.Core.Packets;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>The virtual wire takes the time a real one would: serialisation, one frame after the other.</summary>
public sealed class VirtualPortTests
{
    [Fact]
    public void Frames_reach_the_peer_once_serialised_one_after_the_other_at_the_line_rate()
    {
        using var wire = new EngineHarness(lineRate: 1_000_000_000);
        wire.ResolvePeer();
        wire.Peer.KeepDatagrams = false;
        var app = wire.Bind(5000);
        var payload = new byte[1500 - 14 - 28]; // a 1500-byte frame
        long start = Stopwatch.GetTimestamp() + Stopwatch.Frequency; // later than any breath so far: the wire is idle
        long frameTicks = 1524 * 8 * Stopwatch.Frequency / 1_000_000_000; // a 1500-byte frame takes 12.19 µs at 1 Gbit/s
        app.Send(payload, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        app.Send(payload, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        wire.Engine.DoWork(start);
        long before = wire.Peer.ReceivedUdpPackets;

        wire.Engine.DoWork(start + frameTicks - 2);
        Assert.Equal(before, wire.Peer.ReceivedUdpPackets);
        wire.Engine.DoWork(start + frameTicks);
        Assert.Equal(before + 1, wire.Peer.ReceivedUdpPackets);
        wire.Engine.DoWork(start + 2 * frameTicks - 2);
        Assert.Equal(before + 1, wire.Peer.ReceivedUdpPackets);
        wire.Engine.DoWork(start + 2 * frameTicks);
        Assert.Equal(before + 2, wire.Peer.ReceivedUdpPackets);
    }

    [Fact]
    public void Without_a_line_rate_frames_arrive_at_once()
    {
        using var wire = new EngineHarness();
        wire.ResolvePeer();
        wire.Peer.KeepDatagrams = false;
        var app = wire.Bind(5000);
        app.Send("now"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        long before = wire.Peer.ReceivedUdpPackets;
        wire.Engine.DoWork();
        Assert.Equal(before + 1, wire.Peer.ReceivedUdpPackets);
    }
}
