using System.Globalization;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// Packets that `log` rules saw, on their way from the dataplane to the daemon's log. The dataplane writes fixed
/// records into a ring (no allocation, no lock, never blocks: a full ring drops the record and counts it); the
/// control plane drains it and writes one line per packet, naming the owning application, as the kernel's
/// LOG target writes to the kernel log. Each rule logs at most <see cref="PerRulePerSecond"/> packets a second.
/// </summary>
public sealed class PacketLog
{
    public const int PerRulePerSecond = 10;
    private const int Capacity = 1024;

    private readonly RecordRing<Record> _ring = new(Capacity);

    public long Dropped => _ring.Dropped;

    private struct Record
    {
        public long Handle;
        public PacketSummary Packet;
    }

    /// <summary>Dataplane thread: records a packet a log rule matched.</summary>
    public void Write(long handle, Chain chain, in ParsedPacket packet, PipeSocket? socket)
    {
        ref var record = ref _ring.Begin(out bool ok);
        if (!ok)
        {
            return;
        }
        record.Handle = handle;
        record.Packet.Fill(chain, packet, socket);
        _ring.Commit();
    }

    /// <summary>Control plane: formats what was written since the last call, oldest first.</summary>
    public List<string> Drain(Func<int, string> appName, Func<long, string> prefix)
    {
        var lines = new List<string>();
        foreach (var r in _ring.Take())
        {
            string chainAndRest = r.Packet.Describe();
            int space = chainAndRest.IndexOf(' ');
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{prefix(r.Handle)}{chainAndRest[..space]} handle {r.Handle}:{chainAndRest[space..]} ({r.Packet.Owner(appName)})"));
        }
        return lines;
    }
}
