using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>
/// The daemon's part of TCP: the stack is the application's, the dataplane carries its segments — to the listening
/// socket, with the checksum checked; a segment for a closed port is answered with a reset, as a kernel does; what
/// an application sends must come from its own port.
/// </summary>
public sealed class TcpCarriageTests : IDisposable
{
    private readonly EngineHarness _wire = new();

    public void Dispose() => _wire.Dispose();

    [Fact]
    public void A_segment_to_a_listening_tcp_socket_reaches_its_pipe_as_sent()
    {
        var app = _wire.Bind(80, protocol: IpProtocols.Tcp);
        var syn = Segment(50000, 80, new TcpSegmentFields(1000, 0, TcpHeader.Syn, 65535));
        _wire.Peer.SendFrame(syn);
        _wire.Breathe();
        Assert.Equal(1, app.Socket.Pipe.Counters.RxPackets);
        Assert.Equal(syn[EthernetHeader.Size..], app.Rx.Peek().ToArray());
        Assert.Equal(0, _wire.Peer.ReceivedTcpResets);
    }

    [Fact]
    public void A_segment_to_a_closed_port_is_answered_with_a_reset_and_a_reset_is_not()
    {
        _wire.ResolvePeer();
        _wire.Peer.SendFrame(Segment(50000, 81, new TcpSegmentFields(1000, 0, TcpHeader.Syn, 65535)));
        _wire.Breathe();
        Assert.Equal(1, _wire.Peer.ReceivedTcpResets);
        Assert.Equal(1, _wire.Engine.Counters.Drops(DropReason.NoSocket));

        _wire.Peer.SendFrame(Segment(50000, 81, new TcpSegmentFields(1000, 0, TcpHeader.Rst, 0)));
        _wire.Breathe();
        Assert.Equal(1, _wire.Peer.ReceivedTcpResets);
        Assert.Equal(2, _wire.Engine.Counters.Drops(DropReason.NoSocket));
    }

    [Fact]
    public void A_tcp_segment_with_a_bad_checksum_is_dropped_and_counted()
    {
        var app = _wire.Bind(80, protocol: IpProtocols.Tcp);
        var syn = Segment(50000, 80, new TcpSegmentFields(1000, 0, TcpHeader.Syn, 65535));
        syn[EthernetHeader.Size + Ipv4Header.Size + 16] ^= 0x5A;
        _wire.Peer.SendFrame(syn);
        _wire.Breathe();
        Assert.Equal(0, app.Socket.Pipe.Counters.RxPackets);
        Assert.Equal(1, _wire.Engine.Counters.Drops(DropReason.BadTcpChecksum));
    }

    [Theory]
    [InlineData(80, true)]
    [InlineData(22, false)]
    public void What_a_tcp_socket_sends_leaves_only_from_its_own_port(ushort sourcePort, bool leaves)
    {
        _wire.ResolvePeer();
        var app = _wire.Bind(80, protocol: IpProtocols.Tcp);
        var slot = app.Tx.Claim();
        app.Tx.Commit(TcpSegmentBuilder.Write(slot, EngineHarness.HostAddress, sourcePort, EngineHarness.PeerAddress, 50000,
            new TcpSegmentFields(7, 1001, TcpHeader.Syn | TcpHeader.Ack, 65535), [], 0));
        app.Tx.Publish();
        _wire.Breathe();
        Assert.Equal(leaves ? 1 : 0, _wire.Engine.Counters.PortTxPackets - _wire.Engine.Counters.ArpRequestsSent - _wire.Engine.Counters.GratuitousArpSent);
        Assert.Equal(leaves ? 0 : 1, _wire.Engine.Counters.Drops(DropReason.TxSpoofedSource));
    }

    private static byte[] Segment(ushort sourcePort, ushort destinationPort, TcpSegmentFields fields)
    {
        var frame = new byte[EthernetHeader.Size + TcpSegmentBuilder.HeaderLength];
        EthernetHeader.Write(frame, MacAddress.Parse("02:00:00:00:00:01"), MacAddress.Parse("02:00:00:00:00:02"), EtherTypes.IPv4);
        TcpSegmentBuilder.Write(frame.AsSpan(EthernetHeader.Size), EngineHarness.PeerAddress, sourcePort, EngineHarness.HostAddress, destinationPort, fields, [], 0);
        return frame;
    }
}
