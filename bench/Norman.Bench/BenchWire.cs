using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Bench;

/// <summary>An engine on an unlimited virtual wire whose peer only counts, for scenarios that run it on one thread.</summary>
public static class BenchWire
{
    /// <summary>The engine, its peer and its host; each with an IPv6 address too (fd66::1, fd66::2).</summary>
    public static (Engine Engine, SimulatedPeer Peer, HostInterface Host) Create()
    {
        var host = new HostInterface(MacAddress.Parse("02:00:00:00:00:01"), NetAddress.Parse("198.18.0.1"), 24, Address6: NetAddress.Parse("fd66::1"));
        var peer = new SimulatedPeer(MacAddress.Parse("02:00:00:00:00:02"), NetAddress.Parse("198.18.0.2"))
        {
            Address6 = NetAddress.Parse("fd66::2"),
            HostMac = host.Mac,
            HostAddress = host.Address,
            KeepDatagrams = false,
        };
        return (new Engine(new VirtualPort(peer, 0), host), peer, host);
    }
}
