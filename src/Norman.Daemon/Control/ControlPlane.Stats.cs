using Norman.Core.Packets;
using Norman.Core.Protocol;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Control;

/// <summary>The statistics family: counters, every socket's, rule's and class's figures, and the conntrack table.</summary>
public sealed partial class ControlPlane
{
    private Task<int[]> OnCounters(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Counters = Counters();
        return NoDescriptors;
    }

    private Task<int[]> OnStats(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Stats = Stats(session.Identity);
        return NoDescriptors;
    }

    private async Task<int[]> OnConntrack(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Conntrack = await ListConntrackAsync().ConfigureAwait(false);
        return [];
    }

    /// <summary>The dataplane's counters, with the socket count, conntrack's and the verdict caches'.</summary>
    public Dictionary<string, long> Counters()
    {
        var counters = engine.Counters.Snapshot();
        counters["sockets"] = sockets.Count;
        counters["conntrack_flows"] = engine.Conntrack.Count;
        counters["conntrack_table_full"] = engine.Conntrack.TableFull;
        counters["verdict_cache_hits"] = engine.IngressVerdicts.Hits + engine.EgressVerdicts.Hits;
        counters["verdict_cache_misses"] = engine.IngressVerdicts.Misses + engine.EgressVerdicts.Misses;
        (engine.Port as IPortStatistics)?.AddCounters(counters);
        return counters;
    }

    /// <summary>Every counter, the sockets' as <paramref name="viewer"/> may see them (as `norman ss` shows them).</summary>
    public StatsInfo Stats(PeerIdentity viewer) => new()
    {
        Port = info.Port,
        Counters = Counters(),
        // One row per socket: the counters are the pipes'; a listener's thousands of connections are ss's to list.
        Sockets = sockets.Snapshot().Select(s => Describe(s, viewer, engine.Qos)).ToList(),
        Rules = DescribeFilter().Rules,
        Classes = Qos is null ? [] : DescribeQos().Classes,
    };

    private async Task<ConntrackInfo> ListConntrackAsync()
    {
        var list = new ListFlowsCommand();
        engine.Post(list);
        await list.Applied.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        return new ConntrackInfo
        {
            Active = engine.Policy.UsesConntrack,
            Count = list.Flows.Count,
            Max = engine.Conntrack.Capacity,
            TableFull = engine.Conntrack.TableFull,
            Flows = list.Flows.Select(flow => flow.Key.Protocol is IpProtocols.Icmp or IpProtocols.IcmpV6
                // An ICMP query's key holds its id and its request's type where ports are: id first, whichever side asked.
                ? flow.OriginLocal
                    ? Flow(flow, flow.Key.LocalAddress, flow.Key.LocalPort, flow.Key.RemoteAddress, flow.Key.RemotePort)
                    : Flow(flow, flow.Key.RemoteAddress, flow.Key.LocalPort, flow.Key.LocalAddress, flow.Key.RemotePort)
                : flow.OriginLocal
                    ? Flow(flow, flow.Key.LocalAddress, flow.Key.LocalPort, flow.Key.RemoteAddress, flow.Key.RemotePort)
                    : Flow(flow, flow.Key.RemoteAddress, flow.Key.RemotePort, flow.Key.LocalAddress, flow.Key.LocalPort)).ToList(),
        };

        static TrackedFlowInfo Flow(TrackedFlow flow, NetAddress source, ushort sourcePort, NetAddress destination, ushort destinationPort) => new()
        {
            Protocol = flow.Key.Protocol switch { IpProtocols.Tcp => "tcp", IpProtocols.Icmp => "icmp", IpProtocols.IcmpV6 => "icmpv6", _ => "udp" },
            State = flow.State,
            SecondsLeft = flow.SecondsLeft,
            Source = source.ToString(),
            SourcePort = sourcePort,
            Destination = destination.ToString(),
            DestinationPort = destinationPort,
            Replied = flow.Replied,
        };
    }
}
