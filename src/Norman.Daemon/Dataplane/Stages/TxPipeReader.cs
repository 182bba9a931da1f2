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
        var tx = socket.Tx;
        long badIndexBefore = tx.CorruptProducerIndex;
        int available = tx.Available();
        if (tx.CorruptProducerIndex != badIndexBefore)
        {
            Drop(socket, counters, DropReason.TxCorruptIndex);
            return 0;
        }
        return available;
    }

    /// <summary>
    /// The head packet's length as a frame, skipping (and counting) bad slots; 0 when none of the
    /// <paramref name="waiting"/> packets is left. Each skipped slot is one fewer waiting.
    /// </summary>
    public static int HeadFrameLength(PipeSocket socket, DataplaneCounters counters, ref int waiting)
    {
        var tx = socket.Tx;
        while (waiting > 0)
        {
            long badLengthBefore = tx.CorruptSlotLength;
            var packet = tx.Peek();
            if (!packet.IsEmpty)
            {
                return EthernetHeader.Size + packet.Length;
            }
            Drop(socket, counters, tx.CorruptSlotLength != badLengthBefore ? DropReason.TxCorruptLength : DropReason.TxMalformed);
            tx.Advance();
            waiting--;
            if (++socket.TxBadSlotsThisBreath >= MaxBadSlotsPerBreath)
            {
                // Enough garbage from this pipe for one breath: the others' turn. What is left waits for the next.
                socket.Counters.TxThrottled++;
                waiting = 0;
            }
        }
        return 0;
    }

    /// <summary>
    /// The DSCP of the head packet, read in place (only to choose a class: what leaves is checked after the copy);
    /// 0 when it is not a well-formed IPv4 or IPv6 header. Only for a pipe known to hold a packet.
    /// </summary>
    public static byte HeadDscp(PipeSocket socket)
    {
        var packet = socket.Tx.Peek();
        return packet.Length < 2 ? (byte)0
            : (packet[0] >> 4) == 4 ? (byte)(packet[1] >> 2)
            : (packet[0] >> 4) == 6 ? (byte)((((packet[0] & 0x0F) << 4) | (packet[1] >> 4)) >> 2)
            : (byte)0;
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
