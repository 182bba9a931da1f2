using System.Runtime.InteropServices;
using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane.Ports.Xdp;

/// <summary>
/// One AF_XDP socket on one queue of an interface, with a UMEM of its own: <see cref="Frames"/> chunks of
/// <see cref="ChunkSize"/> bytes (20 MiB), <see cref="RxRingSize"/> lent to the kernel through the fill ring for what
/// it receives, <see cref="TxRingSize"/> kept for what Norman sends. Four rings, each a single-producer single-consumer ring shared with the kernel:
/// <code>
///  fill (we → kernel):        addresses of free chunks for the kernel to receive into
///  RX (kernel → we):          xdp_desc { u64 addr, u32 len, u32 options } of received frames
///  TX (we → kernel):          xdp_desc of frames to send
///  completion (kernel → we):  addresses of chunks the kernel has sent and handed back
/// </code>
/// Each ring's producer and consumer indices run freely (u32, wrapping); the writer publishes with a release store and
/// the reader sees it with an acquire load, as the kernel's smp_store_release/smp_load_acquire pair does. A chunk's
/// address and length are the kernel's, but they are checked against the UMEM before any copy all the same.
/// With need_wakeup, the kernel asks (a flag in a ring) for a system call only when it has stopped working on a ring.
/// </summary>
public sealed unsafe class XskSocket : IDisposable
{
    public const int ChunkSize = 2048;
    /// <summary>
    /// Chunks lent to the kernel for receiving (the fill and RX rings' size): enough to ride out the dataplane's thread
    /// being descheduled for 10 ms at 800,000 frames a second, since the kernel drops what it has no chunk for.
    /// </summary>
    public const int RxRingSize = 8192;
    /// <summary>Chunks for sending (the TX and completion rings' size).</summary>
    public const int TxRingSize = 2048;
    public const int Frames = RxRingSize + TxRingSize;
    private const long UmemBytes = (long)Frames * ChunkSize;

    private const int AfXdp = 44, SockRaw = 3, SockCloexec = 0x80000;
    private const int SolXdp = 283;
    private const int XdpMmapOffsets = 1, XdpRxRing = 2, XdpTxRing = 3, XdpUmemReg = 4, XdpUmemFillRing = 5, XdpUmemCompletionRing = 6,
        XdpStatistics = 7, XdpOptions = 8;
    private const ushort XdpUseNeedWakeup = 1 << 3;
    private const uint XdpRingNeedWakeup = 1;
    private const uint XdpOptionsZeroCopy = 1;
    private const long PageOffsetRx = 0, PageOffsetTx = 0x80000000, PageOffsetFill = 0x100000000, PageOffsetCompletion = 0x180000000;
    private const int MapPrivate = 0x02, MapAnonymous = 0x20, MapPopulate = 0x8000;

    /// <summary>One mapped ring: its indices, its flags word, its entries.</summary>
    private struct Ring
    {
        public uint* Producer;
        public uint* Consumer;
        public uint* Flags;
        public byte* Entries;
        public byte* Mapping;
        public nuint MappingBytes;
    }

    private readonly int _fd = -1;
    private readonly byte* _umem;
    private Ring _fill, _completion, _rx, _tx;
    /// <summary>Chunks free for sending (a stack of UMEM addresses): the TX half, less what the kernel holds.</summary>
    private readonly ulong[] _freeTx = new ulong[TxRingSize];
    private int _freeTxCount;
    private bool _disposed;

    public XskSocket(int ifindex, int queue, string device)
    {
        Queue = queue;
        _fd = Libc.Socket(AfXdp, SockRaw | SockCloexec, 0);
        if (_fd < 0)
        {
            throw Failure("socket(AF_XDP)", "An XDP port needs root, or CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF; and a kernel with AF_XDP (5.4 or later).");
        }
        try
        {
            void* umem = Libc.Mmap(null, (nuint)UmemBytes, Libc.PROT_READ | Libc.PROT_WRITE, MapPrivate | MapAnonymous | MapPopulate, -1, 0);
            if (umem == (void*)-1)
            {
                throw Failure("mmap of the UMEM", "");
            }
            _umem = (byte*)umem;
            var registration = stackalloc byte[32]; // xdp_umem_reg: addr, len, chunk_size, headroom, flags, tx_metadata_len
            new Span<byte>(registration, 32).Clear();
            *(ulong*)registration = (ulong)_umem;
            *(ulong*)(registration + 8) = (ulong)UmemBytes;
            *(uint*)(registration + 16) = ChunkSize;
            SetOption(XdpUmemReg, registration, 32, "XDP_UMEM_REG");
            int rxSize = RxRingSize, txSize = TxRingSize;
            SetOption(XdpUmemFillRing, &rxSize, sizeof(int), "XDP_UMEM_FILL_RING");
            SetOption(XdpUmemCompletionRing, &txSize, sizeof(int), "XDP_UMEM_COMPLETION_RING");
            SetOption(XdpRxRing, &rxSize, sizeof(int), "XDP_RX_RING");
            SetOption(XdpTxRing, &txSize, sizeof(int), "XDP_TX_RING");
            var offsets = stackalloc ulong[16]; // xdp_mmap_offsets: rx, tx, fill, completion; each producer, consumer, desc, flags
            int length = 16 * sizeof(ulong);
            if (Libc.GetSockOpt(_fd, SolXdp, XdpMmapOffsets, offsets, &length) != 0 || length < 16 * sizeof(ulong))
            {
                throw Failure("getsockopt(XDP_MMAP_OFFSETS)", "");
            }
            _rx = MapRing(offsets, PageOffsetRx, RxRingSize, 16, "RX");
            _tx = MapRing(offsets + 4, PageOffsetTx, TxRingSize, 16, "TX");
            _fill = MapRing(offsets + 8, PageOffsetFill, RxRingSize, 8, "fill");
            _completion = MapRing(offsets + 12, PageOffsetCompletion, TxRingSize, 8, "completion");
            // The UMEM's first chunks are the kernel's to receive into, from the start; the rest are for sending.
            for (uint i = 0; i < RxRingSize; i++)
            {
                ((ulong*)_fill.Entries)[i] = (ulong)i * ChunkSize;
            }
            for (uint i = 0; i < TxRingSize; i++)
            {
                _freeTx[i] = (ulong)(RxRingSize + i) * ChunkSize;
            }
            _freeTxCount = TxRingSize;
            Volatile.Write(ref *_fill.Producer, RxRingSize);
            var address = stackalloc byte[16]; // sockaddr_xdp: family, flags, ifindex, queue_id, shared_umem_fd
            new Span<byte>(address, 16).Clear();
            *(ushort*)address = AfXdp;
            *(ushort*)(address + 2) = XdpUseNeedWakeup;
            *(uint*)(address + 4) = (uint)ifindex;
            *(uint*)(address + 8) = (uint)queue;
            if (Libc.Bind(_fd, address, 16) != 0)
            {
                throw Failure($"binding an AF_XDP socket to {device} queue {queue}",
                    Libc.LastError == 22 ? $"Is queue {queue} one of {device}'s (see /sys/class/net/{device}/queues)?" : "");
            }
            uint options = 0;
            length = sizeof(uint);
            ZeroCopy = Libc.GetSockOpt(_fd, SolXdp, XdpOptions, &options, &length) == 0 && (options & XdpOptionsZeroCopy) != 0;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Fd => _fd;
    public int Queue { get; }
    /// <summary>The driver moves frames in and out of the UMEM itself; otherwise the kernel copies them (copy mode).</summary>
    public bool ZeroCopy { get; }

    /// <summary>Frames the kernel could not hand over (RX ring full, or no free chunk in the fill ring), from its statistics.</summary>
    public (ulong RxDropped, ulong RxRingFull, ulong FillRingEmpty) Statistics()
    {
        var statistics = stackalloc ulong[6];
        int length = 6 * sizeof(ulong);
        new Span<byte>(statistics, length).Clear();
        Libc.GetSockOpt(_fd, SolXdp, XdpStatistics, statistics, &length);
        return (statistics[0], statistics[3], statistics[4]);
    }

    /// <summary>Copies received frames into the batch, and gives their chunks straight back to the fill ring.</summary>
    /// <summary>The RX ring holds frames not yet taken.</summary>
    public bool HasReceived => Volatile.Read(ref *_rx.Producer) != *_rx.Consumer;

    public int Receive(PacketBatch batch)
    {
        uint consumer = *_rx.Consumer;
        uint available = Volatile.Read(ref *_rx.Producer) - consumer;
        if (available == 0)
        {
            WakeIfAsked(_fill, receive: true);
            return 0;
        }
        int count = (int)Math.Min(available, (uint)(PacketBatch.Capacity - batch.Count));
        uint fillProducer = *_fill.Producer;
        for (int n = 0; n < count; n++)
        {
            byte* descriptor = _rx.Entries + ((consumer + (uint)n) & (RxRingSize - 1)) * 16;
            ulong address = *(ulong*)descriptor;
            uint length = *(uint*)(descriptor + 8);
            if (address < UmemBytes && length <= ChunkSize && address + length <= UmemBytes)
            {
                var frame = new ReadOnlySpan<byte>(_umem + address, (int)Math.Min(length, (uint)PacketBatch.FrameSize));
                frame.CopyTo(batch.NextBuffer());
                batch.Append(frame.Length);
            }
            // The chunk goes back whole (aligned mode: the kernel adds its headroom itself).
            ((ulong*)_fill.Entries)[(fillProducer + (uint)n) & (RxRingSize - 1)] = address & ~(ulong)(ChunkSize - 1);
        }
        Volatile.Write(ref *_rx.Consumer, consumer + (uint)count);
        Volatile.Write(ref *_fill.Producer, fillProducer + (uint)count);
        return count;
    }

    /// <summary>Queues a frame for sending; false when every TX chunk is in flight or the TX ring is full.</summary>
    public bool TryQueue(ReadOnlySpan<byte> frame, ref uint txProducer)
    {
        if (_freeTxCount == 0 || txProducer - Volatile.Read(ref *_tx.Consumer) >= TxRingSize || frame.Length > ChunkSize)
        {
            return false;
        }
        ulong address = _freeTx[--_freeTxCount];
        frame.CopyTo(new Span<byte>(_umem + address, ChunkSize));
        byte* descriptor = _tx.Entries + (txProducer & (TxRingSize - 1)) * 16;
        *(ulong*)descriptor = address;
        *(uint*)(descriptor + 8) = (uint)frame.Length;
        *(uint*)(descriptor + 12) = 0;
        txProducer++;
        return true;
    }

    /// <summary>Takes back the chunks the kernel has sent; then the TX producer to queue from.</summary>
    public uint BeginTransmit()
    {
        uint consumer = *_completion.Consumer;
        uint completed = Volatile.Read(ref *_completion.Producer) - consumer;
        for (uint n = 0; n < completed && _freeTxCount < _freeTx.Length; n++)
        {
            _freeTx[_freeTxCount++] = ((ulong*)_completion.Entries)[(consumer + n) & (TxRingSize - 1)] & ~(ulong)(ChunkSize - 1);
        }
        Volatile.Write(ref *_completion.Consumer, consumer + completed);
        return *_tx.Producer;
    }

    /// <summary>Publishes what <see cref="TryQueue"/> queued, and kicks the kernel if it asked to be woken.</summary>
    public void EndTransmit(uint txProducer)
    {
        if (txProducer == *_tx.Producer)
        {
            return;
        }
        Volatile.Write(ref *_tx.Producer, txProducer);
        WakeIfAsked(_tx, receive: false);
    }

    private void WakeIfAsked(in Ring ring, bool receive)
    {
        if ((Volatile.Read(ref *ring.Flags) & XdpRingNeedWakeup) == 0)
        {
            return;
        }
        // EAGAIN, EBUSY and ENOBUFS mean "busy, try again": the next breath asks again.
        if (receive)
        {
            Libc.RecvFrom(_fd, null, 0, Libc.MSG_DONTWAIT, null, null);
        }
        else
        {
            Libc.SendTo(_fd, null, 0, Libc.MSG_DONTWAIT, null, 0);
        }
    }

    private Ring MapRing(ulong* offsets, long pageOffset, int entries, int entrySize, string name)
    {
        // offsets: producer, consumer, desc, flags (bytes from the start of the mapping).
        nuint bytes = (nuint)(offsets[2] + (ulong)entries * (ulong)entrySize);
        void* mapping = Libc.Mmap(null, bytes, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED | MapPopulate, _fd, pageOffset);
        if (mapping == (void*)-1)
        {
            throw Failure($"mmap of the {name} ring", "");
        }
        var start = (byte*)mapping;
        return new Ring
        {
            Producer = (uint*)(start + offsets[0]),
            Consumer = (uint*)(start + offsets[1]),
            Entries = start + offsets[2],
            Flags = (uint*)(start + offsets[3]),
            Mapping = start,
            MappingBytes = bytes,
        };
    }

    private void SetOption(int option, void* value, int length, string name)
    {
        if (Libc.SetSockOpt(_fd, SolXdp, option, value, length) != 0)
        {
            throw Failure($"setsockopt({name})", "");
        }
    }

    private static InvalidOperationException Failure(string call, string hint)
    {
        int errno = Libc.LastError;
        return new InvalidOperationException($"{call} failed: {Libc.ErrorText(errno)}. {hint}".TrimEnd());
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (var ring in new[] { _rx, _tx, _fill, _completion })
        {
            if (ring.Mapping != null)
            {
                Libc.Munmap(ring.Mapping, ring.MappingBytes);
            }
        }
        if (_fd >= 0)
        {
            Libc.Close(_fd);
        }
        if (_umem != null)
        {
            Libc.Munmap(_umem, (nuint)UmemBytes);
        }
    }
}
