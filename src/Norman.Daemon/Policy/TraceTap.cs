using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Policy;

/// <summary>
/// `norman trace --live`: for the next <see cref="Remaining"/> packets matching a libpcap expression, the filter
/// stages record every rule that matched and what decided, with the packet's owner, as `nft monitor trace` shows.
/// The dataplane fills fixed records in a ring (no allocation, no lock; a full ring drops the record, counted);
/// the control plane reads them out for the tool.
/// </summary>
public sealed unsafe class TraceTap
{
    public const int MaxMatched = 8;
    private const int Capacity = 256;

    private readonly BpfFunction _filter;
    private readonly RecordRing<Record> _ring = new(Capacity);
    private int _remaining;

    public TraceTap(string expression, int count)
    {
        _filter = BpfCompiler.Compile(PcapFilter.Compile(expression));
        Expression = expression;
        _remaining = count;
    }

    public string Expression { get; }
    public int Remaining => Volatile.Read(ref _remaining);
    public long Dropped => _ring.Dropped;

    public struct Record
    {
        public PacketSummary Packet;
        public FilterAction Verdict;
        /// <summary>The rule that decided, or 0 for the chain's policy.</summary>
        public long DecidedBy;
        public int MatchedCount;
        public long Matched0, Matched1, Matched2, Matched3, Matched4, Matched5, Matched6, Matched7;
    }

    /// <summary>Dataplane: whether this packet is to be traced (and one fewer remains).</summary>
    public bool Wants(ReadOnlySpan<byte> frame)
    {
        if (_remaining <= 0)
        {
            return false;
        }
        fixed (byte* bytes = frame)
        {
            if (_filter(bytes, frame.Length, frame.Length) == 0)
            {
                return false;
            }
        }
        Volatile.Write(ref _remaining, _remaining - 1);
        return true;
    }

    /// <summary>Dataplane: the record to fill for a traced packet; <paramref name="ok"/> false when the ring is full.</summary>
    public ref Record Begin(out bool ok) => ref _ring.Begin(out ok);

    public void Commit() => _ring.Commit();

    public static void NoteMatch(ref Record record, long handle)
    {
        switch (record.MatchedCount)
        {
            case 0: record.Matched0 = handle; break;
            case 1: record.Matched1 = handle; break;
            case 2: record.Matched2 = handle; break;
            case 3: record.Matched3 = handle; break;
            case 4: record.Matched4 = handle; break;
            case 5: record.Matched5 = handle; break;
            case 6: record.Matched6 = handle; break;
            case 7: record.Matched7 = handle; break;
        }
        record.MatchedCount++;
    }

    /// <summary>Control plane: the records written since the last call.</summary>
    public List<Record> Take() => _ring.Take();

    public static long MatchedAt(in Record record, int index) => index switch
    {
        0 => record.Matched0, 1 => record.Matched1, 2 => record.Matched2, 3 => record.Matched3,
        4 => record.Matched4, 5 => record.Matched5, 6 => record.Matched6, _ => record.Matched7,
    };
}
