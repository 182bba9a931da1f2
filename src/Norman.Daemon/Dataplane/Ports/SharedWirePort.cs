using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using Norman.Core.Pipes;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// A virtual wire between two daemons on one machine, as two hosts on a cable, with no privileges: a file in
/// /dev/shm (mode 0600, so only the same user can reach the cable) holding one frame ring each way. The first
/// daemon to open it takes side A, the second side B; a side whose daemon died is taken over. A sleeping dataplane is
/// woken through its side's FIFO beside the file (<see cref="WireDoorbell"/>), rung by the other side when the ring's
/// needs-wakeup flag asks.
/// <code>
///  0     header: u32 magic 'NRMW', u32 version, u32 slot count, u32 slot size
///  64    side A claim: u64 token, u32 pid        128  side B claim: u64 token, u32 pid
///  4096  ring A → B (PipeLayout)                  4096 + RingBytes: ring B → A
/// </code>
/// </summary>
public sealed unsafe class SharedWirePort : IPort
{
    public const uint Magic = 0x574D524E; // "NRMW"
    public const int SlotCount = 4096;
    public const int SlotSize = 2048;
    private const int HeaderBytes = 4096;
    private const int ClaimAOffset = 64;
    private const int ClaimBOffset = 128;

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long* _claim;
    private readonly long _token;
    private readonly RingProducer _tx;
    private readonly RingConsumer _rx;
    private readonly LineRate _lineRate;
    private readonly WireDoorbell _doorbell;
    private readonly string _path;
    private bool _disposed;

    public SharedWirePort(string name, long lineRateBitsPerSecond)
    {
        if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ArgumentException($"'{name}' is not a wire name: use letters, digits, '-', '_' or '.'.");
        }
        Name = $"wire:{name}";
        _path = $"/dev/shm/norman-wire-{name}";
        long size = HeaderBytes + 2 * PipeLayout.RingBytes(SlotCount, SlotSize);
        using (var stream = new FileStream(_path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite))
        {
            File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            if (stream.Length < size)
            {
                stream.SetLength(size);
            }
            _file = MemoryMappedFile.CreateFromFile(stream, null, size, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        }
        _view = _file.CreateViewAccessor(0, size);
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + _view.PointerOffset;
        _token = Random.Shared.NextInt64(1, long.MaxValue);
        Interlocked.CompareExchange(ref *(uint*)_base, Magic, 0);
        if (*(uint*)_base != Magic)
        {
            Release();
            throw new InvalidOperationException($"{_path} is not a Norman wire. Remove it, or pick another wire name.");
        }
        IsSideA = TryClaim(ClaimAOffset) || (!TryClaim(ClaimBOffset) && TryTakeOver(ClaimAOffset));
        if (!IsSideA && !HoldsClaim(ClaimBOffset) && !TryTakeOver(ClaimBOffset))
        {
            Release();
            throw new InvalidOperationException($"The wire '{name}' already joins two running daemons; a wire has two ends. Pick another name.");
        }
        _claim = (long*)(_base + (IsSideA ? ClaimAOffset : ClaimBOffset));
        *(int*)((byte*)_claim + 8) = Environment.ProcessId;
        byte* ringAtoB = _base + HeaderBytes;
        byte* ringBtoA = ringAtoB + PipeLayout.RingBytes(SlotCount, SlotSize);
        _tx = new RingProducer(IsSideA ? ringAtoB : ringBtoA, SlotCount, SlotSize, resume: true);
        _rx = new RingConsumer(IsSideA ? ringBtoA : ringAtoB, SlotCount, SlotSize, skipStale: true);
        _lineRate = new LineRate(lineRateBitsPerSecond);
        try
        {
            _doorbell = new WireDoorbell(_path, IsSideA);
        }
        catch
        {
            Interlocked.CompareExchange(ref *_claim, 0, _token);
            Release();
            throw;
        }
    }

    public string Name { get; }
    public bool IsSideA { get; }
    public string Path => _path;

    private bool TryClaim(int offset) => Interlocked.CompareExchange(ref *(long*)(_base + offset), _token, 0) == 0;

    private bool HoldsClaim(int offset) => *(long*)(_base + offset) == _token;

    /// <summary>Takes a side whose daemon is no longer running (it died without letting go).</summary>
    private bool TryTakeOver(int offset)
    {
        long held = Volatile.Read(ref *(long*)(_base + offset));
        int pid = *(int*)(_base + offset + 8);
        // A pid of 0 is a claim still being written: alive.
        bool ownerAlive = pid <= 0 || pid == Environment.ProcessId || Directory.Exists($"/proc/{pid}");
        return held != 0 && !ownerAlive && Interlocked.CompareExchange(ref *(long*)(_base + offset), _token, held) == held;
    }

    public int Receive(PacketBatch batch, long now)
    {
        int available = _rx.Available();
        int received = 0;
        while (received < available && !batch.IsFull)
        {
            var frame = _rx.Peek();
            _rx.Advance();
            received++;
            if (frame.Length <= PacketBatch.FrameSize && !frame.IsEmpty)
            {
                frame.CopyTo(batch.NextBuffer());
                batch.Append(frame.Length);
            }
        }
        _rx.Publish();
        return received;
    }

    public long TransmitBudget(long now) => _lineRate.Budget(now);

    public int Transmit(PacketBatch batch, long now)
    {
        int dropped = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            var frame = batch.Frame(i);
            _lineRate.Charge(frame.Length);
            dropped += _tx.TryWrite(frame) ? 0 : 1;
        }
        if (_tx.Publish() && _tx.TakeWakeupRequest())
        {
            _doorbell.RingPeer(); // the other side's dataplane said it was going to sleep
        }
        return dropped;
    }

    public IReadOnlyList<int> WakeDescriptors => [_doorbell.Fd];

    /// <summary>
    /// The rings waiting are taken first, then the ring from the other side is asked to ring (its needs-wakeup flag)
    /// and looked at once more (Dekker, with the other side's publish): a frame published after the look rings.
    /// </summary>
    public SleepAllowance PrepareToSleep(long now)
    {
        _doorbell.Drain();
        return _rx.PrepareToSleep() ? SleepAllowance.UntilWoken : SleepAllowance.NotNow;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Interlocked.CompareExchange(ref *_claim, 0, _token);
        bool otherSideEmpty = *(long*)(_base + (IsSideA ? ClaimBOffset : ClaimAOffset)) == 0;
        _doorbell.Dispose();
        Release();
        if (otherSideEmpty)
        {
            File.Delete(_path);
        }
    }

    private void Release()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
