using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress: finds the socket of each datagram or TCP segment for this host — a connected socket's 5-tuple first, then a listener
/// on our address, then a wildcard listener — and checks its UDP or TCP checksum as a kernel does. It only looks up: the
/// filter then sees the packet with its owner, and the host stage answers datagrams that found no socket.
/// </summary>
public sealed class DemuxStage(DataplaneCounters counters, SocketLookup sockets, HostInterface host)
{
    public bool VerifyChecksums { get; set; } = true;

    public void Run(PacketBatch batch)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            ref var packet = ref batch.Parsed(i);
            if (batch.IsDone(i) || packet.Kind is not (PacketKind.Udp or PacketKind.Tcp) || packet.IsFragment
                || !host.IsOurs(packet.Destination))
            {
                continue;
            }
            if (VerifyChecksums && !batch.IsChecksumTrusted(i) && !InternetChecksum.IsValidTransport(batch.Frame(i), packet))
            {
                var reason = packet.Kind == PacketKind.Udp ? DropReason.BadUdpChecksum : DropReason.BadTcpChecksum;
                counters.Drop(reason);
                batch.MarkDropped(i, reason);
                continue;
            }
            if (sockets.TryFind(packet.Protocol, packet.Destination, packet.DestinationPort, packet.Source, packet.SourcePort, out int slot))
            {
                batch.SocketSlot(i) = slot;
            }
        }
    }
}
