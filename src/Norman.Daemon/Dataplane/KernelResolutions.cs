namespace Norman.Daemon.Dataplane;

/// <summary>
/// Next hops the dataplane needs and the kernel must resolve, when Norman shares the kernel's address (an xdp port with
/// --share-address): ARP is then the kernel's, so the neighbour stage asks through here instead of sending a request,
/// and the control side has the kernel resolve (and copies the kernel's answers into Norman's table). A small ring the
/// dataplane writes without allocating or locking; when the control side falls behind, old asks are overwritten — they
/// are hints, and the neighbour stage asks again at its next probe.
/// </summary>
public sealed class KernelResolutions
{
    private const int Capacity = 64;
    private readonly uint[] _addresses = new uint[Capacity];
    private long _written;
    private long _read;

    /// <summary>On the dataplane thread: the kernel should resolve <paramref name="address"/> (host order).</summary>
    public void Ask(uint address)
    {
        long at = _written;
        Volatile.Write(ref _addresses[at % Capacity], address);
        Volatile.Write(ref _written, at + 1);
    }

    /// <summary>On the control side: the addresses asked since the last call (at most the ring's worth).</summary>
    public List<uint> Take()
    {
        long written = Volatile.Read(ref _written);
        long from = Math.Max(_read, written - Capacity);
        var asked = new List<uint>();
        for (long at = from; at < written; at++)
        {
            asked.Add(Volatile.Read(ref _addresses[at % Capacity]));
        }
        _read = written;
        return asked;
    }
}
