namespace Norman.Daemon.Dataplane;

/// <summary>A socket's traffic and drop counters; written by the dataplane thread only.</summary>
public sealed class SocketCounters
{
    public long RxPackets;
    public long RxBytes;
    public long TxPackets;
    public long TxBytes;
    public long Wakeups;
    /// <summary>Breaths in which the dataplane stopped skipping this socket's bad TX slots at the bound, for its neighbours' sake.</summary>
    public long TxThrottled;
    /// <summary>When (Stopwatch ticks) the dataplane last delivered to the socket, and last sent for it; 0 for never.</summary>
    public long LastRxTicks;
    public long LastTxTicks;
    private readonly long[] _drops = new long[DropReasons.Count];

    public void Drop(DropReason reason) => _drops[(int)reason]++;

    public long Drops(DropReason reason) => Volatile.Read(ref _drops[(int)reason]);

    public Dictionary<string, long> DropSnapshot()
    {
        var result = new Dictionary<string, long>();
        for (int i = 1; i < _drops.Length; i++)
        {
            long count = Volatile.Read(ref _drops[i]);
            if (count != 0)
            {
                result[DropReasons.Name((DropReason)i)] = count;
            }
        }
        return result;
    }
}
