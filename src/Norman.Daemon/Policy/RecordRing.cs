namespace Norman.Daemon.Policy;

/// <summary>
/// Fixed records from the dataplane to the control plane: one writer, one reader, no allocation or lock on the
/// writing side, and a full ring drops the record (counted) rather than wait. Indices are free-running.
/// </summary>
public sealed class RecordRing<T>(int capacity) where T : struct
{
    private readonly T[] _records = new T[capacity];
    private long _written;
    private long _read;

    /// <summary>Records dropped because the reader was behind.</summary>
    public long Dropped { get; private set; }

    /// <summary>Writer: the next record to fill (cleared), then <see cref="Commit"/>; <paramref name="ok"/> false when full.</summary>
    public ref T Begin(out bool ok)
    {
        if (_written - Volatile.Read(ref _read) >= _records.Length)
        {
            Dropped++;
            ok = false;
            return ref _records[0];
        }
        ok = true;
        ref var record = ref _records[_written % _records.Length];
        record = default;
        return ref record;
    }

    /// <summary>Writer: publishes the record from <see cref="Begin"/>.</summary>
    public void Commit() => Volatile.Write(ref _written, _written + 1);

    /// <summary>Reader: every record published since the last call, oldest first.</summary>
    public List<T> Take()
    {
        var taken = new List<T>();
        long written = Volatile.Read(ref _written);
        for (long at = _read; at < written; at++)
        {
            taken.Add(_records[at % _records.Length]);
        }
        Volatile.Write(ref _read, written);
        return taken;
    }
}
