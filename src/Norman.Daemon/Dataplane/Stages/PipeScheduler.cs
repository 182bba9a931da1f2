using Norman.Core.Packets;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Egress, first stage: chooses which TX pipes to serve (round robin, up to <see cref="Quantum"/> packets a socket
/// a turn, within the port's line-rate budget) and copies each packet out of shared memory into the dataplane's
/// own buffer before anything looks at it — the DMA read — so the application cannot change it after the check.
/// A packet that does not fit the budget stays in its pipe for the next breath.
/// </summary>
public sealed class PipeScheduler(DataplaneCounters counters, SocketSet sockets)
{
    public const int Quantum = 16;
    private int _cursor;

    public void Run(PacketBatch batch, long budget)
    {
        int count = sockets.Count;
        if (count == 0)
        {
            return;
        }
        _cursor = _cursor >= count ? 0 : _cursor;
        for (int turn = 0; turn < count && !batch.IsFull && budget > 0; turn++)
        {
            var socket = sockets.Active((_cursor + turn) % count);
            budget = Drain(socket, batch, budget);
        }
        _cursor++;
    }

    private long Drain(PipeSocket socket, PacketBatch batch, long budget)
    {
        var tx = socket.Tx;
        long badIndexBefore = tx.CorruptProducerIndex;
        int available = tx.Available();
        if (tx.CorruptProducerIndex != badIndexBefore)
        {
            Drop(socket, DropReason.TxCorruptIndex);
            return budget;
        }
        int taken = 0;
        while (taken < available && taken < Quantum && !batch.IsFull)
        {
            long badLengthBefore = tx.CorruptSlotLength;
            var packet = tx.Peek();
            if (packet.IsEmpty)
            {
                Drop(socket, tx.CorruptSlotLength != badLengthBefore ? DropReason.TxCorruptLength : DropReason.TxMalformed);
                tx.Advance();
                taken++;
                continue;
            }
            int frameLength = EthernetHeader.Size + packet.Length;
            long wireBytes = LineRate.WireBytes(frameLength);
            if (wireBytes > budget)
            {
                break;
            }
            packet.CopyTo(batch.NextBuffer()[EthernetHeader.Size..]);
            batch.Append(frameLength);
            batch.SocketSlot(batch.Count - 1) = socket.Slot;
            tx.Advance();
            budget -= wireBytes;
            taken++;
        }
        tx.Publish();
        return budget;
    }

    private void Drop(PipeSocket socket, DropReason reason)
    {
        socket.Counters.Drop(reason);
        counters.Drop(reason);
    }
}
