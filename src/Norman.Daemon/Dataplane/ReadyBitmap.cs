using Norman.Core.Pipes;
using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// One user's <see cref="ReadyMap"/> as the daemon holds it: the memory, which stays mapped while any of the user's
/// sockets has a bit in it, so until the dataplane has let go of them all (it never reads memory that can go); the
/// bits, which the control plane hands to that user's sockets, lowest first so the words the dataplane reads stay few;
/// and the dataplane's table from a bit to its socket.
/// </summary>
public sealed unsafe class ReadyBitmap : IDisposable
{
    private static long _lastId;
    private readonly SharedMemory _region;
    /// <summary>Where a bit goes back (the control plane's table, which lets the map go with its last); null: kept here.</summary>
    private readonly Action<ReadyBitmap, int>? _returnTo;
    private readonly object _gate = new();
    /// <summary>Bits given back by closed sockets, lowest first; under <see cref="_gate"/> (control plane).</summary>
    private readonly PriorityQueue<int, int> _freeBits = new();
    private int _nextBit;
    private int _taken;

    /// <summary>The dataplane thread's own: the socket that holds each bit, and how many words hold a bit in use.</summary>
    private PipeSocket?[] _byBit = new PipeSocket?[64];

    private ReadyBitmap(int uid, SharedMemory region, Action<ReadyBitmap, int>? returnTo)
    {
        Uid = uid;
        _region = region;
        _returnTo = returnTo;
        Map = new ReadyMap(region.Address);
    }

    /// <summary>
    /// Makes a user's map: a sealed memfd of <see cref="ReadyMap.Bytes"/>, its pages backed as bits are used; its bits
    /// go back through <paramref name="returnTo"/>, which lets the map go with its last bit.
    /// </summary>
    public static ReadyBitmap Create(int uid, Action<ReadyBitmap, int>? returnTo = null) =>
        new(uid, SharedMemory.Create("norman:ready", ReadyMap.Bytes), returnTo);

    public int Uid { get; }
    /// <summary>Names this map among all the daemon made: a client whose connection held an earlier map of the same user maps this one instead.</summary>
    public long Id { get; } = Interlocked.Increment(ref _lastId);
    public ReadyMap Map { get; }
    /// <summary>The memfd passed with each bind of this user's sockets.</summary>
    public int Fd => _region.Fd;

    /// <summary>Words the dataplane reads a breath: up to the highest bit a socket it serves holds (dataplane thread).</summary>
    internal int WordsInUse { get; private set; }
    /// <summary>Sockets the dataplane serves with a bit here (dataplane thread).</summary>
    internal int Members { get; private set; }

    /// <summary>A bit for a new socket (control plane); -1 when all are taken (the socket is then found by the sweep).</summary>
    public int TakeBit()
    {
        lock (_gate)
        {
            if (_freeBits.TryDequeue(out int bit, out _))
            {
                _taken++;
                return bit;
            }
            if (_nextBit >= ReadyMap.Bits)
            {
                return -1;
            }
            _taken++;
            return _nextBit++;
        }
    }

    /// <summary>
    /// Gives a closed socket's bit back (control plane), once the dataplane has let go of the socket; the last bit back
    /// lets the map go.
    /// </summary>
    public void Release(int bit)
    {
        if (_returnTo is null)
        {
            ReturnBit(bit);
        }
        else
        {
            _returnTo(this, bit);
        }
    }

    /// <summary>Takes a bit back; true when no socket holds one any more.</summary>
    internal bool ReturnBit(int bit)
    {
        lock (_gate)
        {
            _freeBits.Enqueue(bit, bit);
            return --_taken == 0;
        }
    }

    /// <summary>The dataplane starts serving a socket with a bit here (cold: a command between breaths).</summary>
    internal void Attach(PipeSocket socket)
    {
        int bit = socket.ReadyBit;
        if (bit >= _byBit.Length)
        {
            Array.Resize(ref _byBit, Math.Max(bit + 1, 2 * _byBit.Length));
        }
        _byBit[bit] = socket;
        WordsInUse = Math.Max(WordsInUse, (bit >> 6) + 1);
        Members++;
    }

    /// <summary>The dataplane no longer serves the socket (cold).</summary>
    internal void Detach(PipeSocket socket)
    {
        if (ReferenceEquals(_byBit[socket.ReadyBit], socket))
        {
            _byBit[socket.ReadyBit] = null;
        }
        Members--;
    }

    /// <summary>The socket the dataplane serves with <paramref name="bit"/>, if any (a bit set for none is ignored).</summary>
    internal PipeSocket? At(int bit) => (uint)bit < (uint)_byBit.Length ? _byBit[bit] : null;

    /// <summary>Unmaps the memory: only once the dataplane has stopped.</summary>
    public void Dispose() => _region.Dispose();
}
