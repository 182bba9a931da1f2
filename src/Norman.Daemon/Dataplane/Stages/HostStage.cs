using System.Runtime.InteropServices;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress, after the filter: the duties the kernel does on its own behalf. Answers ARP for our address and learns
/// the asker, answers ping (and IPv6 neighbour discovery), answers a datagram that found no socket with ICMP port
/// unreachable and a TCP segment with a reset (together at most <see cref="UnreachablePerSecond"/> a second), and drops what is not for this host
/// or not yet carried (other protocols, fragments), counted. Frames it sends wait in <see cref="Outbox"/> for the
/// egress side of the same breath.
/// </summary>
public sealed class HostStage(DataplaneCounters counters, HostInterface host, NeighbourTable neighbours, long ticksPerSecond)
{
    /// <summary>Linux's default icmp_msgs_per_sec, with its burst of 50.</summary>
    public const int UnreachablePerSecond = 1000;
    private const int UnreachableBurst = 50;

    private double _unreachableTokens = UnreachableBurst;
    private long _lastRefill;

    public FrameQueue Outbox { get; } = new(64);

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
                HandleArp(batch.Frame(i), packet, now);
                batch.MarkDone(i);
                continue;
            }
            if (packet.IpVersion == 6)
            {
                HandleIpv6(batch.Frame(i), packet);
                batch.MarkDone(i);
                continue;
            }
            if (!host.IsOurs(packet.Destination))
            {
                counters.Drop(DropReason.NotForThisHost);
                batch.MarkDone(i);
                continue;
            }
            if (packet.IsFragment)
            {
                counters.Drop(DropReason.IpFragment);
                batch.MarkDone(i);
                continue;
            }
            switch (packet.Kind)
            {
                case PacketKind.Udp when batch.SocketSlot(i) < 0:
                    counters.Drop(DropReason.NoSocket);
                    batch.MarkDone(i);
                    if (TakeUnreachableToken(now))
                    {
                        SendPortUnreachable(batch.Frame(i), packet);
                    }
                    break;
                case PacketKind.Udp:
                    break;
                case PacketKind.Tcp when batch.SocketSlot(i) < 0:
                    // A closed port answers with a reset, as RFC 9293 says (not a reset, though: that would loop).
                    counters.Drop(DropReason.NoSocket);
                    batch.MarkDone(i);
                    if ((packet.TcpFlags & TcpHeader.Rst) == 0 && TakeUnreachableToken(now))
                    {
                        SendTcpReset(batch.Frame(i), packet);
                    }
                    break;
                case PacketKind.Tcp:
                    break;
                case PacketKind.Icmp when packet.IcmpType == IcmpHeader.EchoRequestV4:
                    ReplyToPing(batch.Frame(i), packet);
                    batch.MarkDone(i);
                    break;
                default:
                    counters.Drop(DropReason.UnsupportedProtocol);
                    batch.MarkDone(i);
                    break;
            }
        }
    }

    private void HandleArp(ReadOnlySpan<byte> frame, in ParsedPacket packet, long now)
    {
        var arp = frame[packet.NetworkOffset..];
        if (!host.IsOurs(ArpPacket.TargetIp(arp)))
        {
            // Other hosts' ARP on a shared segment (a gratuitous ARP, a request for a neighbour): read and let be, as a
            // kernel's ARP does; not a drop.
            counters.HostFrames++;
            return;
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
                counters.Drop(DropReason.ArpMacChange);
                return;
            case NeighbourTable.Learned.TableFull:
                // Thousands of askers at once (a flood): not remembered, not answered; our own lookups still find room.
                counters.Drop(DropReason.NeighbourTableFull);
                return;
        }
        counters.HostFrames++;
        if (!request)
        {
            return;
        }
        var reply = ReserveOwnFrame();
        if (reply.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.ArpReply(reply, host.Mac, host.Address, senderMac, senderIp));
        counters.ArpRepliesSent++;
    }

    /// <summary>IPv6 is answered, not carried: neighbour solicitations for our address and ping, when one is configured.</summary>
    private void HandleIpv6(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        if (host.Address6 is not { } ours || (packet.Destination != ours && packet.Destination != host.SolicitedNode6))
        {
            counters.Drop(DropReason.NotForThisHost);
            return;
        }
        if (packet.Kind != PacketKind.IcmpV6)
        {
            counters.Drop(DropReason.UnsupportedProtocol);
            return;
        }
        bool solicitation = Icmpv6Frames.SolicitedTarget(frame, packet) == ours;
        if (!solicitation && !(packet.IcmpType == IcmpHeader.EchoRequestV6 && packet.Destination == ours))
        {
            counters.Drop(DropReason.UnsupportedProtocol);
            return;
        }
        counters.HostFrames++;
        // A reply is never longer than the request it answers, and both fit a frame buffer.
        var reply = ReserveOwnFrame();
        if (reply.IsEmpty)
        {
            return;
        }
        if (solicitation)
        {
            Outbox.Commit(Icmpv6Frames.Advertisement(frame, packet, reply, host.Mac, ours));
            counters.NeighbourAdvertisementsSent++;
        }
        else
        {
            Outbox.Commit(Icmpv6Frames.EchoReply(frame, packet, reply, host.Mac));
            counters.EchoRepliesSent++;
        }
    }

    private void ReplyToPing(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        counters.HostFrames++;
        var reply = ReserveOwnFrame();
        if (reply.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.EchoReplyV4(frame, packet, reply, host.Mac));
        counters.EchoRepliesSent++;
    }

    /// <summary>Queues an ARP request for a next hop (the neighbour stage asks).</summary>
    public void RequestArp(NetAddress target)
    {
        var request = ReserveOwnFrame();
        if (request.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.ArpRequest(request, host.Mac, host.Address, target));
        counters.ArpRequestsSent++;
    }

    /// <summary>Queues a TCP reset for a segment a reject rule refused.</summary>
    public void SendTcpReset(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        var reset = ReserveOwnFrame();
        if (reset.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.TcpResetV4(frame, packet, reset, host.Mac));
        counters.TcpResetsSent++;
    }

    /// <summary>
    /// Announces our address with a gratuitous ARP (a request for our own address, broadcast), as a host does when
    /// an interface comes up, so that neighbours holding an old MAC for it update their tables.
    /// </summary>
    public void AnnounceAddress()
    {
        var announcement = ReserveOwnFrame();
        if (announcement.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.ArpRequest(announcement, host.Mac, host.Address, host.Address));
        counters.GratuitousArpSent++;
    }

    /// <summary>Room in the outbox for one frame of the host's own; empty, and the drop counted, when it is full.</summary>
    private Span<byte> ReserveOwnFrame()
    {
        var frame = Outbox.Reserve();
        if (frame.IsEmpty)
        {
            counters.Drop(DropReason.HostTxFull);
        }
        return frame;
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

    /// <summary>Queues an ICMP port unreachable for a datagram no socket wanted, or one a reject rule refused.</summary>
    public void SendPortUnreachable(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        var message = ReserveOwnFrame();
        if (message.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.PortUnreachableV4(frame, packet, message, host.Mac));
        counters.PortUnreachableSent++;
    }
}
