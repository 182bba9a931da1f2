using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress: finds each datagram's socket in the flow table — a connected socket's 5-tuple first, then a listener
/// on our address, then a wildcard listener — and checks its UDP checksum as a kernel does. A datagram for a
/// closed port is dropped and answered with ICMP port unreachable, at most <see cref="UnreachablePerSecond"/> a second.
/// </summary>
public sealed class DemuxStage(DataplaneCounters counters, FlowTable flows, HostStage hostStage, long ticksPerSecond)
{
    /// <summary>Linux's default icmp_msgs_per_sec, with its burst of 50.</summary>
    public const int UnreachablePerSecond = 1000;
    private const int UnreachableBurst = 50;
    private static readonly NetAddress AnyV4 = NetAddress.FromV4(0);

    private double _unreachableTokens = UnreachableBurst;
    private long _lastRefill;

    public bool VerifyChecksums { get; set; } = true;

    public void Run(PacketBatch batch, long now)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            ref var packet = ref batch.Parsed(i);
            var frame = batch.Frame(i);
            if (VerifyChecksums && !batch.IsChecksumTrusted(i) && !UdpPacketBuilder.HasValidChecksum(frame, packet))
            {
                counters.Drop(DropReason.BadUdpChecksum);
                batch.MarkDone(i);
                continue;
            }
            if (flows.TryGet(new FlowKey(packet.Protocol, packet.Destination, packet.DestinationPort, packet.Source, packet.SourcePort), out int slot)
                || flows.TryGet(FlowKey.Listener(packet.Protocol, packet.Destination, packet.DestinationPort), out slot)
                || flows.TryGet(FlowKey.Listener(packet.Protocol, AnyV4, packet.DestinationPort), out slot))
            {
                batch.SocketSlot(i) = slot;
                continue;
            }
            counters.Drop(DropReason.NoSocket);
            batch.MarkDone(i);
            if (TakeUnreachableToken(now))
            {
                hostStage.SendPortUnreachable(frame, packet);
            }
        }
    }

    private bool TakeUnreachableToken(long now)
    {
        _unreachableTokens = Math.Min(UnreachableBurst, _unreachableTokens + (now - _lastRefill) * (double)UnreachablePerSecond / ticksPerSecond);
        _lastRefill = now;
        if (_unreachableTokens < 1)
        {
            return false;
        }
        _unreachableTokens--;
        return true;
    }
}
