using Norman.Core.Packets;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Egress: layer 2, as the kernel owns it. Picks the next hop (the destination on our subnet or IPv6 link, else the
/// gateway of its family), finds its MAC in the neighbour table (asked for by ARP or by a neighbour solicitation) and
/// writes the Ethernet header; IPv6 multicast goes to its 33:33 group. A packet whose next hop is still being
/// asked for waits in a small queue (Linux keeps a few per neighbour too) and leaves when the answer comes; one
/// whose neighbour never answers is a counted drop.
/// </summary>
public sealed class NeighbourStage(DataplaneCounters counters, SocketSet sockets, HostInterface host, NeighbourTable neighbours, HostReplies replies)
{
    private readonly FrameQueue _waiting = new(64);

    public int Waiting => _waiting.Count;

    /// <summary>Puts waiting packets whose neighbour has answered back into the batch (called before new ones are gathered).</summary>
    public void Release(PacketBatch batch, long now)
    {
        for (int n = _waiting.Count; n > 0 && !batch.IsFull; n--)
        {
            var frame = _waiting.Peek();
            long owner = _waiting.PeekTag();
            PacketParser.Parse(frame, out var packet);
            var result = Resolve(packet.Destination, now, out var mac);
            if (result == NeighbourTable.Lookup.Pending)
            {
                // Back to the end of the queue. Pop first: in a full queue the slot reserved next is the very one
                // popped, so the frame is copied onto itself; before the fix a full queue had no slot to reserve
                // and the copy threw, which stopped the dataplane.
                _waiting.Pop();
                frame.CopyTo(_waiting.Reserve());
                _waiting.Commit(frame.Length, owner);
                continue;
            }
            if (result == NeighbourTable.Lookup.Resolved)
            {
                frame.CopyTo(batch.NextBuffer());
                EthernetHeader.Write(batch.NextBuffer(), mac, host.Mac, EtherTypeOf(packet));
                batch.Append(frame.Length);
                batch.SocketSlot(batch.Count - 1) = OwnerSlot(owner);
                counters.SentPackets++;
            }
            else
            {
                counters.Drop(DropReason.NeighbourUnreachable);
            }
            _waiting.Pop();
        }
    }

    public void Run(PacketBatch batch, int first, long now)
    {
        for (int i = first; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            var frame = batch.Frame(i);
            var socket = sockets[batch.SocketSlot(i)];
            var result = Resolve(batch.Parsed(i).Destination, now, out var mac);
            if (result == NeighbourTable.Lookup.Resolved)
            {
                EthernetHeader.Write(frame, mac, host.Mac, EtherTypeOf(batch.Parsed(i)));
                socket.Counters.TxPackets++;
                socket.Counters.TxBytes += batch.Parsed(i).PayloadLength;
                socket.Counters.LastTxTicks = now;
                counters.SentPackets++;
                continue;
            }
            batch.MarkDone(i);
            var wait = result == NeighbourTable.Lookup.Pending ? _waiting.Reserve() : Span<byte>.Empty;
            if (wait.IsEmpty)
            {
                socket.Counters.Drop(DropReason.NeighbourUnreachable);
                counters.Drop(DropReason.NeighbourUnreachable);
                continue;
            }
            frame.CopyTo(wait);
            // Remember the sender (slot and id: the slot may belong to another socket by the time the frame leaves).
            _waiting.Commit(frame.Length, (long)socket.Slot << 40 | (socket.Id & 0xFF_FFFF_FFFF));
            socket.Counters.TxPackets++;
            socket.Counters.TxBytes += batch.Parsed(i).PayloadLength;
            socket.Counters.LastTxTicks = now;
        }
    }

    private NeighbourTable.Lookup Resolve(NetAddress destination, long now, out MacAddress mac)
    {
        if (host.IsBroadcast(destination))
        {
            mac = MacAddress.Broadcast;
            return NeighbourTable.Lookup.Resolved;
        }
        if (destination.IsMulticast6)
        {
            mac = Ipv6Multicast.MacOf(destination);
            return NeighbourTable.Lookup.Resolved;
        }
        NetAddress nextHop;
        if (host.IsOnLink(destination))
        {
            nextHop = destination;
        }
        else if (host.GatewayFor(destination) is { } gateway)
        {
            nextHop = gateway;
        }
        else
        {
            mac = default;
            return NeighbourTable.Lookup.Failed;
        }
        var result = neighbours.Resolve(nextHop, now, out mac, out bool shouldProbe);
        if (shouldProbe)
        {
            replies.AskForNeighbour(nextHop);
        }
        return result;
    }

    private static ushort EtherTypeOf(in ParsedPacket packet) => packet.IpVersion == 6 ? EtherTypes.IPv6 : EtherTypes.IPv4;

    private int OwnerSlot(long owner)
    {
        int slot = (int)(owner >> 40);
        return sockets.IsCurrent(slot, owner & 0xFF_FFFF_FFFF) ? slot : -1;
    }
}
