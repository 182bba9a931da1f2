using Norman.Core.Packets;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// Everything the host sends on its own behalf — ARP, ping and neighbour-discovery replies, ICMP errors, TCP resets —
/// in one place, whichever stage asks (the host stage for closed ports, the filter for reject rules, the neighbour
/// stage for ARP requests): the frames wait in <see cref="Outbox"/> for the egress side of the same breath.
/// Generated errors are held to Linux's limits wherever they come from: all ICMP errors and resets together at most
/// <see cref="ErrorsPerSecond"/> a second (icmp_msgs_per_sec, burst 50), and ICMP errors to one peer at most one a
/// second after a burst of six (icmp_ratelimit). And an IP reply goes where the application's own packets to that
/// address would: to a peer off the subnet only through the gateway, none without one (counted, as theirs are).
/// </summary>
public sealed class HostReplies(DataplaneCounters counters, HostInterface host, long ticksPerSecond)
{
    /// <summary>Linux's default icmp_msgs_per_sec, with its burst of 50.</summary>
    public const int ErrorsPerSecond = 1000;
    private const int ErrorBurst = 50;
    /// <summary>Linux's icmp_ratelimit (one a second to a peer) and its burst (XRLIM_BURST_FACTOR).</summary>
    private const int PeerErrorBurst = 6;
    private const int PeerSlots = 1024;

    private double _errorTokens = ErrorBurst;
    private long _lastRefill;
    /// <summary>Per-peer ICMP error buckets, in a small table indexed by the peer's address (a collision shares a bucket).</summary>
    private readonly uint[] _peerAddress = new uint[PeerSlots];
    private readonly double[] _peerTokens = new double[PeerSlots];
    private readonly long[] _peerRefill = new long[PeerSlots];

    public FrameQueue Outbox { get; } = new(64);

    /// <summary>When the kernel owns ARP for our address (a shared address): next hops are asked of it, not of the wire.</summary>
    public KernelResolutions? Kernel { get; init; }

    /// <summary>
    /// Queues an ICMP destination unreachable (<paramref name="code"/>: 3 port, 1 host, 0 net, 2 protocol, 13 prohibited),
    /// or for an IPv6 packet ICMPv6's with the code meaning the same (port 4, prohibited 1, any other 3).
    /// </summary>
    public void SendUnreachable(ReadOnlySpan<byte> frame, in ParsedPacket packet, byte code, long now)
    {
        if (!Routable(packet.Source) || !TakeErrorToken(now) || !TakePeerToken(packet.Source, now))
        {
            return;
        }
        var message = Reserve();
        if (message.IsEmpty)
        {
            return;
        }
        Outbox.Commit(packet.IpVersion == 6
            ? Icmpv6Frames.Unreachable(frame, packet, message, host.Mac, code switch
            {
                IcmpHeader.PortUnreachableCode => Icmpv6Frames.PortUnreachableCode,
                13 => 1, // administratively prohibited
                0 => 0,  // no route
                _ => 3,  // address unreachable
            })
            : ControlFrames.DestinationUnreachableV4(frame, packet, message, host.Mac, code));
        counters.PortUnreachableSent++;
    }

    /// <summary>Queues a TCP reset answering a segment (a closed port's, or a reject rule's), never one for a reset.</summary>
    public void SendTcpReset(ReadOnlySpan<byte> frame, in ParsedPacket packet, long now)
    {
        if ((packet.TcpFlags & TcpHeader.Rst) != 0 || !Routable(packet.Source) || !TakeErrorToken(now))
        {
            return;
        }
        var reset = Reserve();
        if (reset.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.TcpReset(frame, packet, reset, host.Mac));
        counters.TcpResetsSent++;
    }

    /// <summary>Queues the reply to a ping for our address.</summary>
    public void SendEchoReply(ReadOnlySpan<byte> frame, in ParsedPacket packet)
    {
        if (!Routable(packet.Source))
        {
            return;
        }
        var reply = Reserve();
        if (reply.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.EchoReplyV4(frame, packet, reply, host.Mac));
        counters.EchoRepliesSent++;
    }

    public void SendArpReply(MacAddress asker, NetAddress askerAddress)
    {
        var reply = Reserve();
        if (reply.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.ArpReply(reply, host.Mac, host.Address, asker, askerAddress));
        counters.ArpRepliesSent++;
    }

    /// <summary>Queues an ARP request, or for an IPv6 next hop a neighbour solicitation (the neighbour stage asks).</summary>
    public void AskForNeighbour(NetAddress target)
    {
        if (Kernel is not null)
        {
            if (target.IsV4)
            {
                Kernel.Ask(target.V4);
            }
            return;
        }
        if (!target.IsV4 && host.SourceFor(target) is null)
        {
            return;
        }
        var request = Reserve();
        if (request.IsEmpty)
        {
            return;
        }
        if (target.IsV4)
        {
            Outbox.Commit(ControlFrames.ArpRequest(request, host.Mac, host.Address, target));
            counters.ArpRequestsSent++;
        }
        else
        {
            Outbox.Commit(Icmpv6Frames.Solicitation(request, host.Mac, host.SourceFor(target)!.Value, target));
            counters.NeighbourSolicitationsSent++;
        }
    }

    /// <summary>
    /// Announces our address with a gratuitous ARP (a request for our own address, broadcast), as a host does when
    /// an interface comes up, so that neighbours holding an old MAC for it update their tables.
    /// </summary>
    public void AnnounceAddress()
    {
        if (Kernel is not null)
        {
            return; // the address, and announcing it, are the kernel's
        }
        var announcement = Reserve();
        if (announcement.IsEmpty)
        {
            return;
        }
        Outbox.Commit(ControlFrames.ArpRequest(announcement, host.Mac, host.Address, host.Address));
        counters.GratuitousArpSent++;
    }

    /// <summary>Asks the link's routers to advertise themselves (at start, when the host accepts router advertisements).</summary>
    public void SolicitRouters()
    {
        if (Kernel is not null || host.LinkLocal6 is not { } linkLocal)
        {
            return;
        }
        var solicitation = Reserve();
        if (solicitation.IsEmpty)
        {
            return;
        }
        Outbox.Commit(Icmpv6Frames.RouterSolicitationFrom(solicitation, host.Mac, linkLocal));
        counters.RouterSolicitationsSent++;
    }

    /// <summary>An IPv6 neighbour advertisement or echo reply (the host answers these for its --address6).</summary>
    public void SendIpv6Reply(ReadOnlySpan<byte> frame, in ParsedPacket packet, bool advertisement, NetAddress ours)
    {
        // A reply is never longer than the request it answers, and both fit a frame buffer.
        var reply = Reserve();
        if (reply.IsEmpty)
        {
            return;
        }
        if (advertisement)
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

    /// <summary>
    /// Whether an IP reply to <paramref name="destination"/> has a route, as the application's packets need one: on the
    /// subnet, or through a gateway. Without, it is not sent and counted as theirs are (neighbour_unreachable).
    /// </summary>
    private bool Routable(NetAddress destination)
    {
        if (host.IsOnLink(destination) || host.GatewayFor(destination) is not null)
        {
            return true;
        }
        counters.Drop(DropReason.NeighbourUnreachable);
        return false;
    }

    /// <summary>Room in the outbox for one frame of the host's own; empty, and the drop counted, when it is full.</summary>
    private Span<byte> Reserve()
    {
        var frame = Outbox.Reserve();
        if (frame.IsEmpty)
        {
            counters.Drop(DropReason.HostTxFull);
        }
        return frame;
    }

    private bool TakeErrorToken(long now)
    {
        _errorTokens = Math.Min(ErrorBurst, _errorTokens + (now - _lastRefill) * (double)ErrorsPerSecond / ticksPerSecond);
        _lastRefill = now;
        if (_errorTokens < 1)
        {
            counters.RepliesRateLimited++;
            return false;
        }
        _errorTokens--;
        return true;
    }

    private bool TakePeerToken(NetAddress address, long now)
    {
        uint peer = address.IsV4 ? address.V4 : (uint)(address.High ^ (address.High >> 32) ^ address.Low ^ (address.Low >> 32));
        int slot = (int)((peer * 2654435761u) >> 22) & (PeerSlots - 1);
        if (_peerAddress[slot] != peer || _peerRefill[slot] == 0)
        {
            _peerAddress[slot] = peer;
            _peerTokens[slot] = PeerErrorBurst;
        }
        else
        {
            _peerTokens[slot] = Math.Min(PeerErrorBurst, _peerTokens[slot] + (now - _peerRefill[slot]) / (double)ticksPerSecond);
        }
        _peerRefill[slot] = now;
        if (_peerTokens[slot] < 1)
        {
            counters.RepliesRateLimited++;
            return false;
        }
        _peerTokens[slot]--;
        return true;
    }
}
