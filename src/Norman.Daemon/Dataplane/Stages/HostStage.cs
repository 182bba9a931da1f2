using System.Runtime.InteropServices;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Ingress, after the filter: the duties the kernel does on its own behalf. Answers ARP for our address and learns
/// the asker, does IPv6 neighbour discovery (answers solicitations, learns from them and from advertisements), answers
/// ping of either family, answers a datagram that found no socket with ICMP (or ICMPv6) port unreachable and a TCP
/// segment with a reset, and drops what is not for this host or not yet carried (other protocols, fragments), counted. What it sends, <see cref="HostReplies"/> sends (and rate-limits).
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
            if (packet.Kind == PacketKind.IcmpV6 && batch.SocketSlot(i) >= 0)
            {
                continue; // an error about a packet a socket sent: the socket's (the demux found it)
            }
            if (packet.Kind == PacketKind.IcmpV6)
            {
                Finish(batch, i, HandleIcmpv6(batch.Frame(i), packet, now));
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
                case PacketKind.Icmp when packet.IcmpType == IcmpHeader.EchoRequestV4 && packet.IpVersion == 4:
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
        switch (neighbours.Learn(senderIp, senderMac, now, reply: !request))
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

    /// <summary>
    /// ICMPv6 for our --address6: solicitations for it answered (and their sender learned, as an ARP request naming
    /// us), advertisements learned (as ARP replies: a solicited one may re-confirm a changed MAC, an unsolicited one may
    /// not), ping answered. Neighbour discovery is believed only with a hop limit of 255 and a good checksum (RFC 4861
    /// 7.1): a router cannot forward it, so it came from this link.
    /// </summary>
    private DropReason HandleIcmpv6(ReadOnlySpan<byte> frame, in ParsedPacket packet, long now)
    {
        if (host.Addresses6.Count == 0 || !(host.IsOurs(packet.Destination) || host.IsOurSolicitedNode(packet.Destination) || packet.Destination == Ipv6Multicast.AllNodes))
        {
            return DropReason.NotForThisHost;
        }
        if (packet.IcmpType is Icmpv6Frames.NeighbourSolicitation or Icmpv6Frames.NeighbourAdvertisement or Icmpv6Frames.RouterAdvertisement
            && (Ipv6Header.At(frame[packet.NetworkOffset..]).HopLimit != 255 || !InternetChecksum.IsValidTransport(frame, packet)))
        {
            return DropReason.MalformedNeighbourDiscovery;
        }
        if (Icmpv6Frames.RouterLifetime(frame, packet) is { } lifetime)
        {
            return HandleRouterAdvertisement(frame, packet, lifetime, now);
        }
        if (Icmpv6Frames.SolicitedTarget(frame, packet) is { } target)
        {
            if (target.IsV4 || !host.IsOurs(target))
            {
                counters.HostFrames++; // another host's address resolution on a shared link: read and let be
                return DropReason.None;
            }
            if (!packet.Source.IsUnspecified && Icmpv6Frames.LinkLayerAddress(frame, packet) is { } askerMac
                && Refusal(neighbours.Learn(packet.Source, askerMac, now, reply: false)) is var refused and not DropReason.None)
            {
                return refused;
            }
            counters.HostFrames++;
            replies.SendIpv6Reply(frame, packet, advertisement: true, target);
            return DropReason.None;
        }
        if (Icmpv6Frames.AdvertisedTarget(frame, packet) is { } advertised)
        {
            if (Icmpv6Frames.LinkLayerAddress(frame, packet) is { } mac && !host.IsOurs(advertised)
                && Refusal(neighbours.Learn(advertised, mac, now, reply: Icmpv6Frames.IsSolicitedAdvertisement(frame, packet))) is var refused
                and not DropReason.None)
            {
                return refused;
            }
            counters.HostFrames++;
            return DropReason.None;
        }
        if (packet.IcmpType == IcmpHeader.EchoRequestV6 && host.IsOurs(packet.Destination))
        {
            counters.HostFrames++;
            replies.SendIpv6Reply(frame, packet, advertisement: false, packet.Destination);
            return DropReason.None;
        }
        return DropReason.UnsupportedProtocol;
    }

    /// <summary>Why neighbour discovery's word was not taken (as ARP's: a changed MAC, a full table); None when it was.</summary>
    private static DropReason Refusal(NeighbourTable.Learned learned) => learned switch
    {
        NeighbourTable.Learned.Yes => DropReason.None,
        NeighbourTable.Learned.TableFull => DropReason.NeighbourTableFull,
        _ => DropReason.NeighbourMacChange,
    };

    /// <summary>
    /// A router advertisement, from a link-local address (RFC 4861 6.1.2; anything else is malformed): when the host
    /// accepts them, a lifetime makes its sender the default router and 0 withdraws it; its MAC is learned either way,
    /// as a neighbour's unsolicited word (it cannot change a resolved one).
    /// </summary>
    private DropReason HandleRouterAdvertisement(ReadOnlySpan<byte> frame, in ParsedPacket packet, int lifetime, long now)
    {
        if (!packet.Source.IsLinkLocal6)
        {
            return DropReason.MalformedNeighbourDiscovery;
        }
        counters.HostFrames++;
        if (!host.AcceptsRouterAdvertisements)
        {
            return DropReason.None; // read and let be, as Linux with accept_ra off
        }
        counters.RouterAdvertisementsAccepted++;
        if (Icmpv6Frames.LinkLayerAddress(frame, packet) is { } mac)
        {
            neighbours.Learn(packet.Source, mac, now, reply: false);
        }
        if (lifetime > 0)
        {
            host.Router6 = packet.Source;
        }
        else if (host.Router6 == packet.Source)
        {
            host.Router6 = null;
        }
        return DropReason.None;
    }

}
