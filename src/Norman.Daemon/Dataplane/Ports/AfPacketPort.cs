using Norman.Core.Shm;
using System.Runtime.InteropServices;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// An existing interface (a veth into a test namespace, or a real NIC) through an AF_PACKET socket: a TPACKET_V3
/// memory-mapped RX ring, read block by block with no system call per packet, and sendmmsg for a whole TX batch.
/// The interface is put in promiscuous mode so that Norman's own MAC reaches it, as a NIC would be told to.
/// <code>
///  RX ring: BlockCount blocks of BlockSize bytes, shared with the kernel
///  block: tpacket_block_desc { u32 version, u32 offset_to_priv, hdr_v1 { u32 block_status, u32 num_pkts,
///         u32 offset_to_first_pkt, u32 blk_len, u64 seq, ts first, ts last } }
///         then packets: tpacket3_hdr { u32 next_offset, u32 sec, u32 nsec, u32 snaplen, u32 len, u32 status,
///         u16 mac, u16 net, … } + frame at mac
///  a block belongs to us while block_status has TP_STATUS_USER; writing TP_STATUS_KERNEL gives it back.
/// </code>
/// </summary>
public sealed unsafe class AfPacketPort : IPort
{
    public const int BlockSize = 1 << 18;
    public const int BlockCount = 64;
    private const int FrameSize = 2048;
    /// <summary>A block partly filled is handed over after this many milliseconds: the latency floor when traffic is light.</summary>
    private const int BlockTimeoutMs = 1;

    private const int AfPacket = 17, SockRaw = 3, SockNonblock = 0x800, SockCloexec = 0x80000;
    private const ushort EthPAll = 0x0003;
    private const int SolPacket = 263;
    private const int PacketAddMembership = 1, PacketRxRing = 5, PacketVersion = 10, PacketIgnoreOutgoing = 23;
    private const int TpacketV3 = 2;
    private const ushort PacketMrPromisc = 1;
    private const uint TpStatusKernel = 0, TpStatusUser = 1, TpStatusCsumNotReady = 0x8, TpStatusVlanValid = 0x10,
        TpStatusVlanTpidValid = 0x40, TpStatusCsumValid = 0x80;
    private const int BlockStatusOffset = 8, NumPacketsOffset = 12, FirstPacketOffset = 16;
    private const int MsgHdrSize = 56, MmsgHdrSize = 64;

    private readonly int _fd;
    private readonly byte* _ring;
    private readonly long _ringBytes;
    private readonly LineRate _lineRate;
    private readonly byte* _messages;
    private readonly byte* _iovecs;
    private int _block;
    private int _packetsLeftInBlock = -1;
    private byte* _nextPacket;
    private bool _disposed;
    /// <summary>GRO turned off on the interface while the port holds it (see <see cref="ReceiveMerging"/>).</summary>
    private ReceiveMerging? _merging;

    public AfPacketPort(string device, long lineRateBitsPerSecond)
    {
        Device = device;
        int ifindex = Interfaces.Index(device, "an afpacket port");
        _fd = Libc.Socket(AfPacket, SockRaw | SockNonblock | SockCloexec, Htons(EthPAll));
        if (_fd < 0)
        {
            throw Failure("socket(AF_PACKET)", "An AF_PACKET port needs root or CAP_NET_RAW.");
        }
        try
        {
            SetOption(PacketVersion, TpacketV3, "PACKET_VERSION");
            SetOption(PacketIgnoreOutgoing, 1, "PACKET_IGNORE_OUTGOING");
            var request = stackalloc uint[7];
            request[0] = BlockSize;
            request[1] = BlockCount;
            request[2] = FrameSize;
            request[3] = (uint)((long)BlockSize * BlockCount / FrameSize);
            request[4] = BlockTimeoutMs;
            request[5] = 0;
            request[6] = 0;
            if (Libc.SetSockOpt(_fd, SolPacket, PacketRxRing, request, 7 * sizeof(uint)) != 0)
            {
                throw Failure("setsockopt(PACKET_RX_RING)", "");
            }
            _ringBytes = (long)BlockSize * BlockCount;
            void* ring = Libc.Mmap(null, (nuint)_ringBytes, 0x1 | 0x2, 0x01 /* MAP_SHARED */, _fd, 0);
            if (ring == (void*)-1)
            {
                throw Failure("mmap of the RX ring", "");
            }
            _ring = (byte*)ring;
            var address = stackalloc byte[20]; // sockaddr_ll
            new Span<byte>(address, 20).Clear();
            *(ushort*)address = AfPacket;
            *(ushort*)(address + 2) = Htons(EthPAll);
            *(int*)(address + 4) = ifindex;
            if (Libc.Bind(_fd, address, 20) != 0)
            {
                throw Failure($"bind to {device}", "");
            }
            var membership = stackalloc byte[16]; // packet_mreq
            new Span<byte>(membership, 16).Clear();
            *(int*)membership = ifindex;
            *(ushort*)(membership + 4) = PacketMrPromisc;
            if (Libc.SetSockOpt(_fd, SolPacket, PacketAddMembership, membership, 16) != 0)
            {
                throw Failure("PACKET_ADD_MEMBERSHIP (promiscuous)", "");
            }
            _merging = ReceiveMerging.TurnOff(device);
        }
        catch
        {
            Dispose();
            throw;
        }
        _messages = (byte*)NativeMemory.AllocZeroed((nuint)(MmsgHdrSize * PacketBatch.Capacity));
        _iovecs = (byte*)NativeMemory.AllocZeroed((nuint)(16 * PacketBatch.Capacity));
        _lineRate = new LineRate(lineRateBitsPerSecond);
        Name = $"afpacket:{device}";
    }

    public string Name { get; }
    public string Device { get; }

    public int Receive(PacketBatch batch, long now)
    {
        int received = 0;
        while (!batch.IsFull)
        {
            if (_packetsLeftInBlock <= 0 && !TakeBlock())
            {
                break;
            }
            // tpacket3_hdr: next_offset @0, snaplen @12, status @20, mac @24, vlan_tci @32, vlan_tpid @36. The kernel
            // wrote it; lengths are still checked.
            uint snapLength = *(uint*)(_nextPacket + 12);
            uint status = *(uint*)(_nextPacket + 20);
            ushort macOffset = *(ushort*)(_nextPacket + 24);
            if (macOffset + snapLength <= BlockSize)
            {
                var frame = new ReadOnlySpan<byte>(_nextPacket + macOffset, (int)snapLength);
                int length = (status & TpStatusVlanValid) != 0
                    ? CopyRetagged(frame, batch.NextBuffer(), *(ushort*)(_nextPacket + 32),
                        (status & TpStatusVlanTpidValid) != 0 ? *(ushort*)(_nextPacket + 36) : Norman.Core.Packets.EtherTypes.Vlan)
                    : CopyCut(frame, batch.NextBuffer());
                batch.Append(length);
                if ((status & (TpStatusCsumNotReady | TpStatusCsumValid)) != 0)
                {
                    // Made on this host with the checksum left to offload (a veth peer), or checked by the NIC.
                    batch.MarkChecksumTrusted(batch.Count - 1);
                }
                received++;
            }
            uint nextOffset = *(uint*)_nextPacket;
            _nextPacket += nextOffset;
            if (--_packetsLeftInBlock == 0)
            {
                ReleaseBlock();
            }
        }
        return received;
    }

    /// <summary>
    /// Copies a frame, cut to the buffer if longer (a jumbo frame, which the parse stage then counts as too long).
    /// </summary>
    private static int CopyCut(ReadOnlySpan<byte> frame, Span<byte> buffer)
    {
        int length = Math.Min(frame.Length, buffer.Length);
        frame[..length].CopyTo(buffer);
        return length;
    }

    /// <summary>
    /// The kernel strips a received frame's outer VLAN tag into the ring's header (tp_vlan_tci, tp_vlan_tpid); as
    /// tcpdump does, it is put back, so the dataplane sees the frame as it was on the wire.
    /// </summary>
    private static int CopyRetagged(ReadOnlySpan<byte> frame, Span<byte> buffer, ushort tci, ushort tpid)
    {
        if (frame.Length < 12)
        {
            return CopyCut(frame, buffer);
        }
        frame[..12].CopyTo(buffer);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(buffer[12..], tpid);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(buffer[14..], tci);
        return 16 + CopyCut(frame[12..], buffer[16..]);
    }

    private bool TakeBlock()
    {
        byte* block = _ring + (long)_block * BlockSize;
        if ((Volatile.Read(ref *(uint*)(block + BlockStatusOffset)) & TpStatusUser) == 0)
        {
            return false;
        }
        _packetsLeftInBlock = (int)*(uint*)(block + NumPacketsOffset);
        _nextPacket = block + *(uint*)(block + FirstPacketOffset);
        if (_packetsLeftInBlock == 0)
        {
            ReleaseBlock();
            return false;
        }
        return true;
    }

    private void ReleaseBlock()
    {
        byte* block = _ring + (long)_block * BlockSize;
        Volatile.Write(ref *(uint*)(block + BlockStatusOffset), TpStatusKernel);
        _block = (_block + 1) % BlockCount;
        _packetsLeftInBlock = -1;
    }

    public long TransmitBudget(long now) => _lineRate.Budget(now);

    public IReadOnlyList<int> WakeDescriptors => [_fd];

    /// <summary>
    /// The socket becomes readable when the kernel hands over a block, full or after <see cref="BlockTimeoutMs"/>: the
    /// same latency floor as when busy. Not while a block is half read or already handed over.
    /// </summary>
    public SleepAllowance PrepareToSleep(long now) =>
        _packetsLeftInBlock > 0 || (Volatile.Read(ref *(uint*)(_ring + (long)_block * BlockSize + BlockStatusOffset)) & TpStatusUser) != 0
            ? SleepAllowance.NotNow : SleepAllowance.UntilWoken;

    public int Transmit(PacketBatch batch, long now)
    {
        int count = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            var frame = batch.Frame(i);
            _lineRate.Charge(frame.Length);
            byte* iovec = _iovecs + count * 16;
            // The batch's memory is pinned, so its address holds for the system call.
            *(byte**)iovec = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref MemoryMarshal.GetReference(frame));
            *(nuint*)(iovec + 8) = (nuint)frame.Length;
            byte* message = _messages + count * MmsgHdrSize;
            new Span<byte>(message, MmsgHdrSize).Clear();
            *(byte**)(message + 16) = iovec;   // msg_iov
            *(nuint*)(message + 24) = 1;        // msg_iovlen
            count++;
        }
        int sent = 0;
        while (sent < count)
        {
            int result = Libc.SendMmsg(_fd, _messages + sent * MmsgHdrSize, (uint)(count - sent), 0);
            if (result <= 0)
            {
                break; // The interface's queue is full (EAGAIN) or it is down: the rest are counted as dropped.
            }
            sent += result;
        }
        return count - sent;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _merging?.Dispose();
        if (_ring != null)
        {
            Libc.Munmap(_ring, (nuint)_ringBytes);
        }
        if (_fd >= 0)
        {
            Libc.Close(_fd);
        }
        NativeMemory.Free(_messages);
        NativeMemory.Free(_iovecs);
    }

    private void SetOption(int option, int value, string name)
    {
        if (Libc.SetSockOpt(_fd, SolPacket, option, &value, sizeof(int)) != 0)
        {
            throw Failure($"setsockopt({name})", "");
        }
    }

    private static InvalidOperationException Failure(string call, string hint)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new InvalidOperationException($"{call} failed: {Marshal.GetPInvokeErrorMessage(errno)}. {hint}".TrimEnd());
    }

    private static ushort Htons(ushort value) => (ushort)((value << 8) | (value >> 8));
}
