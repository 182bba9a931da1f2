namespace Norman.Daemon.Dataplane.Ports;

/// <summary>A port with counters of its own (an xdp port's sockets: what the kernel could not hand over), read off the dataplane thread.</summary>
public interface IPortStatistics
{
    void AddCounters(Dictionary<string, long> counters);
}
