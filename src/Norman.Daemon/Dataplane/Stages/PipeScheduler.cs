using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Egress, first stage, when no QoS class is configured: serves the TX pipes round robin, up to
/// <see cref="Quantum"/> packets a socket a turn, within the port's line-rate budget, copying each packet out of
/// shared memory before anything looks at it (see <see cref="TxPipeReader"/>). A packet that does not fit the
/// budget stays in its pipe for the next breath. With classes, <see cref="QosScheduler"/> serves instead.
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
        int waiting = TxPipeReader.Waiting(socket, counters);
        for (int taken = 0; taken < Quantum && !batch.IsFull; taken++)
        {
            int frameLength = TxPipeReader.HeadFrameLength(socket, counters, ref waiting);
            if (frameLength == 0)
            {
                break;
            }
            long wireBytes = LineRate.WireBytes(frameLength);
            if (wireBytes > budget)
            {
                break;
            }
            TxPipeReader.CopyHead(socket, batch, frameLength);
            waiting--;
            budget -= wireBytes;
        }
        socket.Tx.Publish();
        return budget;
    }
}
