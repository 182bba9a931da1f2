using Norman.Core.Packets;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress (after demultiplexing, so a packet's owner is known) and egress (after validation): runs the chain of
/// the current <see cref="PolicySnapshot"/> over every IP packet. Drop and reject are counted drops against the
/// owning socket; reject on ingress also answers a datagram with ICMP port unreachable, as iptables' REJECT does.
/// A chain with no rules and an accepting policy costs one test per batch.
/// </summary>
public sealed class FilterStage(Chain chain, DataplaneCounters counters, SocketSet sockets, HostStage host)
{
    private readonly DropReason _reason = chain == Chain.Ingress ? DropReason.FilteredIngress : DropReason.FilteredEgress;

    public void Run(PacketBatch batch, int first, PolicySnapshot policy)
    {
        if (policy.IsOpen(chain))
        {
            return;
        }
        for (int i = first; i < batch.Count; i++)
        {
            ref var packet = ref batch.Parsed(i);
            if (batch.IsDone(i) || packet.IpVersion == 0)
            {
                continue;
            }
            int slot = batch.SocketSlot(i);
            var socket = slot >= 0 ? sockets[slot] : null;
            var frame = batch.Frame(i);
            var verdict = policy.Evaluate(chain, frame, packet, socket);
            if (verdict == FilterAction.Accept)
            {
                continue;
            }
            counters.Drop(_reason);
            socket?.Counters.Drop(_reason);
            batch.MarkDone(i);
            if (verdict == FilterAction.Reject && chain == Chain.Ingress && packet.Kind == PacketKind.Udp && packet.IpVersion == 4)
            {
                host.SendPortUnreachable(frame, packet);
            }
        }
    }
}
