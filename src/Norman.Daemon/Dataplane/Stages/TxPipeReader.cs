using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// What the TX scheduler does with one socket's pipe: count what is waiting (a corrupt producer index is a counted
/// drop), look at the head packet (corrupt lengths and malformed slots are skipped and counted), and copy it into
/// the dataplane's own buffer — the DMA read — before anything inspects it.
/// </summary>
/// <remarks>
/// The application's memory is hostile. A slot's length is read once (<see cref="HeadFrameLength"/>) and the copy
/// takes exactly that many bytes of the slot, never the field again: an application flipping the length between
/// the two cannot make a longer frame leave, carrying whatever the dataplane's buffer held before. And the slots a
/// breath skips in one pipe are bounded (<see cref="MaxBadSlotsPerBreath"/>): a pipe full of garbage costs its
/// neighbours one short look a breath, and is counted as throttled.
/// </remarks>
public static class TxPipeReader
{
    /// <summary>Bad slots (corrupt length, malformed) a breath skips in one pipe before it moves on to the others.</summary>
    public const int MaxBadSlotsPerBreath = PacketBatch.Capacity;

    /// <summary>Packets waiting in the socket's TX pipe; 0 (and a counted drop) when its producer index is corrupt.</summary>
    public static int Waiting(PipeSocket socket, DataplaneCounters counters)
    {
        int available = socket.Tx.Available(out bool corrupt);
        if (corrupt)
        {
            Drop(socket, counters, DropReason.TxCorruptIndex);
            return 0;
        }
        return available;
    }

    /// <summary>
    /// The head packet's length as a frame, skipping (and counting) bad slots; 0 when none of the
    /// <paramref name="waiting"/> packets is left. Each skipped slot is one fewer waiting; <paramref name="badSlots"/>
    /// counts this breath's against <see cref="MaxBadSlotsPerBreath"/>.
    /// </summary>
    public static int HeadFrameLength(PipeSocket socket, DataplaneCounters counters, ref int waiting, ref int badSlots)
    {
        var tx = socket.Tx;
        while (waiting > 0)
        {
            var packet = tx.Peek(out bool corruptLength);
            if (!packet.IsEmpty)
            {
                return EthernetHeader.Size + packet.Length;
            }
            Drop(socket, counters, corruptLength ? DropReason.TxCorruptLength : DropReason.TxMalformed);
            tx.Advance();
            waiting--;
            if (++badSlots >= MaxBadSlotsPerBreath)
            {
                // Enough garbage from this pipe for one breath: the others' turn. What is left waits for the next.
                socket.Counters.TxThrottled++;
                waiting = 0;
            }
        }
        return 0;
    }

    /// <summary>
    /// Copies the head packet behind a room for the Ethernet header, owned by the socket, and frees its slot.
    /// <paramref name="frameLength"/> is what <see cref="HeadFrameLength"/> read: the copy is that long, from that slot.
    /// </summary>
    public static void CopyHead(PipeSocket socket, PacketBatch batch, int frameLength)
    {
        Norman.Core.Memory.PacketCopy.To(socket.Tx.HeadData(frameLength - EthernetHeader.Size), batch.NextBuffer()[EthernetHeader.Size..]);
        batch.Append(frameLength);
        batch.SocketSlot(batch.Count - 1) = socket.Slot;
        socket.Tx.Advance();
    }

    private static void Drop(PipeSocket socket, DataplaneCounters counters, DropReason reason)
    {
        socket.Counters.Drop(reason);
        counters.Drop(reason);
    }
}
