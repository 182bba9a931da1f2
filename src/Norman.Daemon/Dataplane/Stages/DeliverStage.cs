namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress, last stage: copies each packet (IP header onwards) into its socket's RX pipe. A full pipe drops the
/// packet for that socket alone. Each touched pipe is published once per batch, and its application woken if it
/// sleeps.
/// </summary>
public sealed class DeliverStage(DataplaneCounters counters, SocketSet sockets)
{
    private readonly int[] _touched = new int[PacketBatch.Capacity];

    public void Run(PacketBatch batch, long batchNumber, long now)
    {
        int touchedCount = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            var socket = sockets[batch.SocketSlot(i)];
            ref var packet = ref batch.Parsed(i);
            var ip = batch.Frame(i)[packet.NetworkOffset..packet.PacketEnd];
            var slot = socket.Rx.Claim();
            if (slot.IsEmpty || ip.Length > slot.Length)
            {
                socket.Counters.Drop(DropReason.RxPipeFull);
                counters.Drop(DropReason.RxPipeFull);
                batch.MarkDropped(i, DropReason.RxPipeFull);
                continue;
            }
            Norman.Core.Memory.PacketCopy.To(ip, slot);
            socket.Rx.Commit(ip.Length);
            socket.Counters.RxPackets++;
            socket.Counters.RxBytes += packet.PayloadLength;
            counters.DeliveredPackets++;
            if (socket.TouchedInBatch != batchNumber)
            {
                socket.TouchedInBatch = batchNumber;
                _touched[touchedCount++] = socket.Slot;
            }
        }
        for (int t = 0; t < touchedCount; t++)
        {
            var socket = sockets[_touched[t]];
            socket.Rx.Publish();
            socket.Counters.LastRxTicks = now;
            if (socket.Rx.TakeWakeupRequest())
            {
                socket.Wakeup.Signal();
                socket.Counters.Wakeups++;
                counters.Wakeups++;
            }
        }
    }
}
