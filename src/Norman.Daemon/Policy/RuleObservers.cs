namespace Norman.Daemon.Policy;

/// <summary>Watches a chain's evaluation: each rule that matched (by index and handle), and the one that decided.</summary>
public interface IRuleObserver
{
    void Matched(int index, long handle);
    void Decided(long handle);
}

/// <summary>Watches nothing: the plain evaluation.</summary>
public struct NoObserver : IRuleObserver
{
    public readonly void Matched(int index, long handle)
    {
    }

    public readonly void Decided(long handle)
    {
    }
}

/// <summary>Notes the indexes of the rules that matched, for the verdict cache to replay their counters.</summary>
public ref struct MatchRecorder(Span<int> indexes) : IRuleObserver
{
    private readonly Span<int> _indexes = indexes;

    /// <summary>How many rules matched; more than the span holds means the verdict cannot be cached.</summary>
    public int Count { get; private set; }

    public readonly ReadOnlySpan<int> Indexes => _indexes[..Math.Min(Count, _indexes.Length)];

    /// <summary>The rule that decided (0: the chain's policy).</summary>
    public long DecidedBy { get; private set; }

    public void Matched(int index, long handle)
    {
        if (Count < _indexes.Length)
        {
            _indexes[Count] = index;
        }
        Count++;
    }

    public void Decided(long handle) => DecidedBy = handle;
}

/// <summary>Notes only which rule decided.</summary>
public struct DecisionRecorder : IRuleObserver
{
    public long DecidedBy { get; private set; }

    public readonly void Matched(int index, long handle)
    {
    }

    public void Decided(long handle) => DecidedBy = handle;
}

/// <summary>Writes the rules that matched and the deciding rule into a live-trace record.</summary>
public ref struct TraceRecorder(ref TraceTap.Record record) : IRuleObserver
{
    private ref TraceTap.Record _record = ref record;

    public void Matched(int index, long handle) => TraceTap.NoteMatch(ref _record, handle);

    public void Decided(long handle) => _record.DecidedBy = handle;
}
