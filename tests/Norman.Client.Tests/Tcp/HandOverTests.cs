using Norman.Client.Tcp;
using System.Diagnostics;
using Norman.Core.Packets;

namespace Norman.Client.Tests.Tcp;

/// <summary>
/// A connection made and not accepted, handed to the program its process execs: the stack there resumes it where it
/// was (sequence numbers, window scales, timestamps, SACK, the bytes received and not read), so the peer sees one
/// connection go on.
/// </summary>
public sealed class HandOverTests
{
    [Fact]
    public void A_handed_over_connection_resumes_with_its_unread_bytes_its_sequence_numbers_and_its_timestamps()
    {
        var before = new ScriptedPeer();
        var synAck = before.Establish(timestamp: 5000, sackPermitted: true);
        before.Send(TcpHeader.Ack | TcpHeader.Psh, before.PeerNext, before.OurNext, 65535, "GET / HTTP/1.0\r\n"u8.ToArray(), timestamp: 5010,
            echo: synAck.ReadOptions().TimestampValue);
        before.PeerNext += 16;
        before.Advance(TimeSpan.FromMilliseconds(100)); // its delayed ACK goes out

        var handed = before.Connection.HandOver();
        Assert.NotNull(handed);
        var after = new ScriptedPeer(peer => TcpConnection.Resume(peer, handed), before.Now + Stopwatch.Frequency / 10);
        Assert.Equal(TcpState.Established, after.Connection.State);
        Assert.Equal("GET / HTTP/1.0\r\n"u8.ToArray(), after.Read());

        after.Write("HTTP/1.0 200 OK\r\n"u8.ToArray());
        var answer = Assert.Single(after.Take(), s => s.Payload.Length > 0);
        Assert.Equal(before.OurNext, answer.Sequence);
        Assert.Equal(before.PeerNext, answer.Acknowledgement);
        Assert.InRange(answer.Window << TcpConnection.OurWindowScale, 60_000, int.MaxValue); // scaled as agreed on the SYNs
        var options = answer.ReadOptions();
        Assert.True(options.HasTimestamps);
        Assert.Equal(5010u, options.TimestampEcho);
        // The same clock, 200 ms after the SYN-ACK (100 before the handover, 100 after): the peer's PAWS takes it.
        Assert.InRange(options.TimestampValue - synAck.ReadOptions().TimestampValue, 199u, 201u);
    }

    [Fact]
    public void A_connection_with_bytes_written_or_in_flight_or_not_established_is_not_handed_over()
    {
        var written = new ScriptedPeer();
        written.Establish();
        written.Write(new byte[100]);
        Assert.Null(written.Connection.HandOver());

        var halfOpen = new ScriptedPeer();
        halfOpen.Connection.Accept(new TcpSegment { Sequence = ScriptedPeer.PeerIss, Flags = TcpHeader.Syn, Window = 65535, Mss = 1460 }, halfOpen.Now);
        Assert.Null(halfOpen.Connection.HandOver());
    }

    [Fact]
    public void A_handover_out_of_range_is_refused()
    {
        var peer = new ScriptedPeer();
        peer.Establish();
        var handed = peer.Connection.HandOver()!;
        handed.SendWindowScale = 15;
        Assert.Throws<FormatException>(() => new ScriptedPeer(p => TcpConnection.Resume(p, handed), peer.Now));
    }
}
