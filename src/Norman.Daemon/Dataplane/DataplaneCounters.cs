namespace Norman.Daemon.Dataplane;

/// <summary>
/// The dataplane's own counters. Written by the dataplane thread only, with plain stores; readers on other threads
/// see values at most a batch old (64-bit stores are atomic on the platforms .NET runs Norman on).
/// </summary>
public sealed class DataplaneCounters
{
    private readonly long[] _drops = new long[DropReasons.Count];

    public long PortRxPackets;
    public long PortRxBytes;
    public long PortTxPackets;
    public long PortTxBytes;
    public long DeliveredPackets;
    /// <summary>
    /// Frames the host took for itself (ARP, others' ARP included, ping, neighbour discovery). With the deliveries
    /// and the receive-side drops, they account for every frame the port received.
    /// </summary>
    public long HostFrames;
    public long SentPackets;
    public long ArpRepliesSent;
    public long ArpRequestsSent;
    public long GratuitousArpSent;
    public long NeighbourAdvertisementsSent;
    public long NeighbourSolicitationsSent;
    public long RouterSolicitationsSent;
    public long RouterAdvertisementsAccepted;
    public long EchoRepliesSent;
    public long PortUnreachableSent;
    public long TcpResetsSent;
    /// <summary>ICMP errors and resets not sent: over the rate Linux allows them (icmp_msgs_per_sec, icmp_ratelimit).</summary>
    public long RepliesRateLimited;
    public long Batches;
    /// <summary>Applications woken by the dataplane (they slept on their doorbell while packets arrived).</summary>
    public long Wakeups;
    /// <summary>Times the dataplane slept, and what woke it: a frame at the port, an application's doorbell, a control command, or its own timer.</summary>
    public long Sleeps;
    public long WokenByPort;
    public long WokenByApplication;
    public long WokenByControl;
    public long WokenByTimer;

    public void Drop(DropReason reason) => _drops[(int)reason]++;

    public long Drops(DropReason reason) => Volatile.Read(ref _drops[(int)reason]);

    public long TotalDrops()
    {
        long total = 0;
        foreach (long count in _drops)
        {
            total += count;
        }
        return total;
    }

    public Dictionary<string, long> Snapshot()
    {
        var result = new Dictionary<string, long>
        {
            ["port_rx_packets"] = PortRxPackets,
            ["port_rx_bytes"] = PortRxBytes,
            ["port_tx_packets"] = PortTxPackets,
            ["port_tx_bytes"] = PortTxBytes,
            ["delivered_packets"] = DeliveredPackets,
            ["host_frames"] = HostFrames,
            ["sent_packets"] = SentPackets,
            ["arp_replies_sent"] = ArpRepliesSent,
            ["arp_requests_sent"] = ArpRequestsSent,
            ["gratuitous_arp_sent"] = GratuitousArpSent,
            ["neighbour_advertisements_sent"] = NeighbourAdvertisementsSent,
            ["neighbour_solicitations_sent"] = NeighbourSolicitationsSent,
            ["router_solicitations_sent"] = RouterSolicitationsSent,
            ["router_advertisements_accepted"] = RouterAdvertisementsAccepted,
            ["echo_replies_sent"] = EchoRepliesSent,
            ["port_unreachable_sent"] = PortUnreachableSent,
            ["tcp_resets_sent"] = TcpResetsSent,
            ["replies_rate_limited"] = RepliesRateLimited,
            ["batches"] = Batches,
            ["wakeups"] = Wakeups,
            ["dataplane_sleeps"] = Sleeps,
            ["dataplane_woken_by_port"] = WokenByPort,
            ["dataplane_woken_by_application"] = WokenByApplication,
            ["dataplane_woken_by_control"] = WokenByControl,
            ["dataplane_woken_by_timer"] = WokenByTimer,
        };
        for (int i = 1; i < DropReasons.Count; i++)
        {
            result["drop_" + DropReasons.Name((DropReason)i)] = _drops[i];
        }
        return result;
    }
}
