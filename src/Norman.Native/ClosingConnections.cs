using System.Diagnostics;
using Norman.Client;

namespace Norman.Native;

/// <summary>
/// Closed TCP connections whose data may still be in flight, until they have delivered it. Those done are dropped
/// whenever one is added, so a long-lived server's list holds only what is really still closing.
/// </summary>
internal sealed class ClosingConnections
{
    private readonly object _gate = new();
    private readonly List<NormanTcpStream> _streams = [];

    public void Add(NormanTcpStream stream)
    {
        lock (_gate)
        {
            _streams.RemoveAll(s => s.HasDeliveredEverything);
            _streams.Add(stream);
        }
    }

    public int WaitUntilDelivered(TimeSpan timeout)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            int left;
            lock (_gate)
            {
                _streams.RemoveAll(s => s.HasDeliveredEverything);
                left = _streams.Count;
            }
            if (left == 0 || Stopwatch.GetTimestamp() >= deadline)
            {
                return left;
            }
            // The protocol threads do the sending; this only looks, once a millisecond, until they are done.
            Thread.Sleep(1);
        }
    }
}
