using System.Buffers.Binary;
using System.Text;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Integration.Tests;

/// <summary>
/// Hostile TCP at an application's own stack: the daemon only checks that a segment is well-formed TCP with a good
/// checksum and hands it to the socket, so everything past that — flags, sequence numbers, windows, options,
/// header lengths — is the client library's to survive. The server must go on serving its honest clients.
/// </summary>
public sealed class TcpFuzzTests : DaemonTest
{
    private const ushort Port = 6379;

    [Fact]
    public async Task A_tcp_server_bombarded_with_mangled_segments_keeps_serving_its_clients()
    {
        using var database = Daemon.Start("kvdb", Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.StartsWith("kvdb: serving", database.ReadLine());
        var random = new Random(10);
        const int Rounds = 40, PerRound = 2_500;
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < PerRound; i++)
            {
                Daemon.Peer.SendFrame(Mangled(random));
            }
            var answer = await Daemon.Peer.ExchangeTcpAsync(Port, Encoding.ASCII.GetBytes($"SET k{round} v{round}\nGET k{round}\nQUIT\n"), TimeSpan.FromSeconds(10));
            Assert.True(answer.Outcome == PeerTcpOutcome.Answered, $"round {round}: {answer.Outcome}");
            Assert.Equal($"OK\nVALUE v{round}\nBYE\n", Encoding.ASCII.GetString(answer.Answer));
        }
        Assert.False(database.Process.HasExited, "the server died");
        Assert.True(Daemon.Daemon.Engine.Counters.DeliveredPackets > Rounds * PerRound / 2, "the mangled segments did not reach the application");
    }

    /// <summary>
    /// A SYN flood five times the listener's backlog from ports nobody answers from: without SYN cookies, the backlog
    /// fills with half-open connections that wait a minute for an ACK. The oldest half-open one gives way to each new
    /// SYN, so an honest client that completes its handshake is still served.
    /// </summary>
    [Fact]
    public async Task A_syn_flood_five_times_the_backlog_does_not_lock_honest_clients_out()
    {
        using var database = Daemon.Start("kvdb", Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.StartsWith("kvdb: serving", database.ReadLine());
        var viewer = new Norman.Daemon.Control.PeerIdentity(Environment.ProcessId, 0, 0, "test", "", "/");
        long RecvQ() => Daemon.Daemon.Control.Stats(viewer).Sockets.Single(s => s.Protocol == "tcp").RecvQ;
        long delivered = Daemon.Daemon.Engine.Counters.DeliveredPackets;
        for (int i = 0; i < 20_480; i++)
        {
            var frame = new byte[EthernetHeader.Size + TcpSegmentBuilder.HeaderLength];
            EthernetHeader.Write(frame, Daemon.Peer.HostMac, Daemon.Peer.Mac, EtherTypes.IPv4);
            TcpSegmentBuilder.Write(frame.AsSpan(EthernetHeader.Size), DaemonFixture.PeerAddress, (ushort)(1024 + i), DaemonFixture.HostAddress, Port,
                new TcpSegmentFields((uint)i, 0, TcpHeader.Syn, 65535), [], 0);
            Daemon.Peer.SendFrame(frame);
            if (i % 256 == 255)
            {
                // In waves the socket's pipe can hold, each taken by the listener before the next: every SYN reaches it.
                long target = delivered + i + 1;
                Assert.True(SpinWait.SpinUntil(() => Daemon.Daemon.Engine.Counters.DeliveredPackets >= target && RecvQ() == 0, TimeSpan.FromSeconds(10)),
                    $"the listener did not take SYN {i}");
            }
        }
        Assert.Equal(0, Daemon.Daemon.Engine.Counters.Drops(global::Norman.Daemon.Dataplane.DropReason.RxPipeFull));
        var answer = await Daemon.Peer.ExchangeTcpAsync(Port, "GET nothing\nQUIT\n"u8.ToArray(), TimeSpan.FromSeconds(10));
        Assert.True(answer.Outcome == PeerTcpOutcome.Answered, $"the honest client: {answer.Outcome}");
        Assert.Equal("NOT_FOUND\nBYE\n", Encoding.ASCII.GetString(answer.Answer));
    }

    /// <summary>
    /// A TCP segment from one of a few source ports (so that some land on connections they half-opened), with random
    /// flags, numbers and window, options that may be malformed (zero or overlong lengths, an MSS of 0 or 1, a window
    /// scale of 255), a header length that may disagree with them, and a payload, under a correct checksum.
    /// </summary>
    private byte[] Mangled(Random random)
    {
        var options = new byte[random.Next(0, 11) * 4];
        random.NextBytes(options);
        if (options.Length >= 4 && random.Next(3) == 0)
        {
            options[0] = (byte)random.Next(0, 4); // end, nop, MSS, window scale: the kinds the stack reads
            options[1] = (byte)random.Next(0, 5);
        }
        var payload = new byte[random.Next(0, 3) == 0 ? random.Next(0, 1400) : 0];
        random.NextBytes(payload);
        var frame = new byte[EthernetHeader.Size + TcpSegmentBuilder.HeaderLength + options.Length + payload.Length];
        EthernetHeader.Write(frame, Daemon.Peer.HostMac, Daemon.Peer.Mac, EtherTypes.IPv4);
        var packet = frame.AsSpan(EthernetHeader.Size);
        payload.CopyTo(packet[(TcpSegmentBuilder.HeaderLength + options.Length)..]);
        var fields = new TcpSegmentFields((uint)random.Next(), (uint)random.Next(), (byte)random.Next(256), (ushort)random.Next(65536));
        int length = TcpSegmentBuilder.Write(packet, DaemonFixture.PeerAddress, (ushort)(50000 + random.Next(16)), DaemonFixture.HostAddress, Port,
            fields, options, payload.Length);
        var tcp = packet[Ipv4Header.Size..length];
        if (random.Next(4) == 0)
        {
            tcp[12] = (byte)(random.Next(5, 16) << 4); // a header length of its own, past the options or into the payload
            tcp[16] = tcp[17] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], InternetChecksum.Transport(
                InternetChecksum.PseudoHeaderV4(DaemonFixture.PeerAddress.V4, DaemonFixture.HostAddress.V4, IpProtocols.Tcp, tcp.Length), tcp, IpProtocols.Tcp));
        }
        return frame;
    }
}
