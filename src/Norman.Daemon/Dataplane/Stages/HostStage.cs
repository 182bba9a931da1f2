using System.Runtime.InteropServices;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress, after the filter: the duties the kernel does on its own behalf. Answers ARP for our address and learns
/// the asker, answers ping (and IPv6 neighbour discovery), answers a datagram that found no socket with ICMP port
/// unreachable and a TCP segment with a reset, and drops what is not for this host or not yet carried (other
/// protocols, fragments), counted. What it sends, <see cref="HostReplies"/> sends (and rate-limits).
/// </summary>
public sealed class HostStage(DataplaneCounters counters, HostInterface host, NeighbourTable neighbours, HostReplies replies)
{
    public void Run(PacketBatch batch, long now)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            ref var packet = ref batch.Parsed(i);
            if (packet.Kind == PacketKind.Arp)
            {
                Finish(batch, i, HandleArp(batch.Frame(i), packet, now));
                continue;
            }
            if (packet.IpVersion == 6)
            {
                Finish(batch, i, HandleIpv6(batch.Frame(i), packet));
                continue;
            }
            if (!host.IsOurs(packet.Destination))
            {
                Drop(batch, i, DropReason.NotForThisHost);
                continue;
            }
            if (packet.IsFragment)
            {
                Drop(batch, i, DropReason.IpFragment);
                continue;
            }
            switch (packet.Kind)
            {
                case PacketKind.Udp when batch.SocketSlot(i) < 0:
                    Drop(batch, i, DropReason.NoSocket);
                    replies.SendUnreachable(batch.Frame(i), packet, IcmpHeader.PortUnreachableCode, now);
                    break;
                case PacketKind.Udp:
                    break;
                case PacketKind.Tcp when batch.SocketSlot(i) < 0:
                    // A closed port answers with a reset, as RFC 9293 says (not a reset, though: that would loop).
                    Drop(batch, i, DropReason.NoSocket);
                    replies.SendTcpReset(batch.Frame(i), packet, now);
                    break;
                case PacketKind.Tcp:
                    break;
                case PacketKind.Icmp when packet.IcmpType == IcmpHeader.EchoRequestV4:
                    counters.HostFrames++;
                    replies.SendEchoReply(batch.Frame(i), packet);
                    batch.MarkDone(i);
                    break;
                default:
                    Drop(batch, i, DropReason.UnsupportedProtocol);
                    break;
            }
        }
    }

    private void Drop(PacketBatch batch, int index, DropReason reason)
    {
        counters.Drop(reason);
        batch.MarkDropped(index, reason);
    }

    /// <summary>Done with a frame the host handled itself: dropped (counted) for a reason, or taken (None).</summary>
    private void Finish(PacketBatch batch, int index, DropReason reason)
    {
        if (reason == DropReason.None)
        {
            batch.MarkDone(index);
        }
        else
        {
            Drop(batch, index, reason);
        }
    }

    private DropReason HandleArp(ReadOnlySpan<byte> frame, in ParsedPacket packet, long now)
    {
        var arp = frame[packet.NetworkOffset..];
        if (!host.IsOurs(ArpPacket.TargetIp(arp)))
        {
            // Other hosts' ARP on a shared segment (a gratuitous ARP, a request for a neighbour): read and let be, as a
            // kernel's ARP does; not a drop.
            counters.HostFrames++;
            return DropReason.None;
        }
        var senderMac = ArpPacket.SenderMac(arp);
        var senderIp = ArpPacket.SenderIp(arp);
        // Learn only from ARP that names us, as Linux does: a stranger's chatter does not fill the table.
        bool request = MemoryMarshal.AsRef<ArpPacket>(arp).Operation == ArpPacket.Request;
        switch (neighbours.Learn(senderIp.V4, senderMac, now, reply: !request))
        {
            case NeighbourTable.Learned.MacChangeRefused:
                // A claim to an address we already know, from another MAC and outside an exchange we started: not
                // believed, not answered (answering would teach the claimant's MAC our address as readily).
                return DropReason.ArpMacChange;
            case NeighbourTable.Learned.TableFull:
                // Thousands of askers at once (a flood): not remembered, not answered; our own lookups still find room.
                return DropReason.NeighbourTableFull;
        }
        counters.HostFrames++;
        if (request)
        {
            replies.SendArpReply(senderMac, senderIp);
        }
        return DropReason.None;
    }

    /// <summary>IPv6 is answered, not carried: neighbour solicitations for our address and ping, when one is configured.</summary>
    private DropReason HandleIpv6(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        if (host.Address6 is not { } ours || (packet.Destination != ours && packet.Destination != host.SolicitedNode6))
        {
            return DropReason.NotForThisHost;
        }
        if (packet.Kind != PacketKind.IcmpV6)
        {
            return DropReason.UnsupportedProtocol;
        }
        bool solicitation = Icmpv6Frames.SolicitedTarget(frame, packet) == ours;
        if (!solicitation && !(packet.IcmpType == IcmpHeader.EchoRequestV6 && packet.Destination == ours))
        {
            return DropReason.UnsupportedProtocol;
        }
        counters.HostFrames++;
        replies.SendIpv6Reply(frame, packet, solicitation, ours);
        return DropReason.None;
    }
}
