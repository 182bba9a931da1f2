using Norman.Daemon.Dataplane.Ports;
using Norman.Daemon.Qos;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress, after the filter: each packet for a socket whose QoS class polices is admitted within the class's rate
/// and dropped (counted for the class, the socket and the port) above it, before it costs a copy into the RX pipe.
/// So an application flooded from the wire cannot take the dataplane's time from the others.
/// </summary>
public sealed class PoliceStage(DataplaneCounters counters, SocketSet sockets, HostInterface host)
{
    public void Run(PacketBatch batch, QosSnapshot qos, long now)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            int slot = batch.SocketSlot(i);
            if (slot < 0 || batch.IsDone(i))
            {
                continue;
            }
            var socket = sockets[slot];
            var @class = qos.ReceivingClassOf(socket, host.Address, batch.Parsed(i).Dscp);
            if (!@class.Polices || @class.PoliceAdmits(LineRate.WireBytes(batch.Length(i)), now))
            {
                continue;
            }
            batch.MarkDropped(i, DropReason.Policed);
            @class.Counters.PolicedDrops++;
            socket.Counters.Drop(DropReason.Policed);
            counters.Drop(DropReason.Policed);
        }
    }
}
