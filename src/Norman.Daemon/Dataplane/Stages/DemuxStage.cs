using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress: finds the socket of each datagram or TCP segment for this host — a connected socket's 5-tuple first, then a listener
/// on our address, then a wildcard listener — and checks its UDP or TCP checksum as a kernel does. An ICMPv6 error to us
/// belongs to the socket of the packet it quotes (so that a packet-too-big reaches the TCP stack that sent too much, as
/// the kernel tells its socket). It only looks up: the filter then sees the packet with its owner, and the host stage
/// answers datagrams that found no socket.
/// </summary>
public sealed class DemuxStage(DataplaneCounters counters, SocketLookup sockets, HostInterface host)
{
    public bool VerifyChecksums { get; set; } = true;

    public void Run(PacketBatch batch)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            ref var packet = ref batch.Parsed(i);
            if (batch.IsDone(i) || packet.Kind is not (PacketKind.Udp or PacketKind.Tcp or PacketKind.IcmpV6) || packet.IsFragment
                || !host.IsOurs(packet.Destination))
            {
                continue;
            }
            if (packet.Kind == PacketKind.IcmpV6)
            {
                FindQuotedSocket(batch, i, packet);
                continue;
            }
            if (VerifyChecksums && !batch.IsChecksumTrusted(i) && !InternetChecksum.IsValidTransport(batch.Frame(i), packet))
            {
                var reason = packet.Kind == PacketKind.Udp ? DropReason.BadUdpChecksum : DropReason.BadTcpChecksum;
                counters.Drop(reason);
                batch.MarkDropped(i, reason);
                continue;
            }
            if (sockets.TryFind(packet.Protocol, packet.Destination, packet.DestinationPort, packet.Source, packet.SourcePort, out int slot,
                packet.Kind == PacketKind.Tcp ? packet.TcpFlags : (byte)0))
            {
                batch.SocketSlot(i) = slot;
            }
        }
    }

    /// <summary>
    /// An ICMPv6 error (unreachable, packet too big, time exceeded, parameter problem) with a good checksum, quoting a
    /// UDP or TCP packet one of our sockets sent, from one of our addresses: that socket's.
    /// </summary>
    private void FindQuotedSocket(PacketBatch batch, int index, in ParsedPacket packet)
    {
        var frame = batch.Frame(index);
        if (packet.IcmpType is < 1 or > 4 || !QuotedPacket.TryRead(frame[packet.PayloadOffset..packet.PacketEnd], out var quoted)
            || quoted.Source.IsV4 || !host.IsOurs(quoted.Source) || !InternetChecksum.IsValidTransport(frame, packet))
        {
            return;
        }
        if (sockets.TryFind(quoted.Protocol, quoted.Source, quoted.SourcePort, quoted.Destination, quoted.DestinationPort, out int slot))
        {
            batch.SocketSlot(index) = slot;
        }
    }
}
