using Norman.Core.Shm;
using System.Runtime.InteropServices;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// An existing interface (a veth into a test namespace, or a real NIC) through an AF_PACKET socket: a TPACKET_V2
/// memory-mapped RX ring, read frame by frame with no system call per packet, and sendmmsg for a whole TX batch.
/// The interface is put in promiscuous mode so that Norman's own MAC reaches it, as a NIC would be told to.
/// <code>
///  RX ring: FrameCount frames of FrameSize bytes, shared with the kernel
///  frame: tpacket2_hdr { u32 status, u32 len, u32 snaplen, u16 mac, u16 net, u32 sec, u32 nsec,
///         u16 vlan_tci, u16 vlan_tpid, … } + frame at mac
///  a frame belongs to us while status has TP_STATUS_USER; writing TP_STATUS_KERNEL gives it back.
/// </code>
/// Not TPACKET_V3, whose blocks reach user space only when full or after a timeout of at least a millisecond: at the
/// rates of request and response traffic that added half a millisecond to each packet on average, busy or asleep.
/// </summary>
public sealed unsafe class AfPacketPort : IPort
{
    /// <summary>The ring's memory comes in blocks of this size, each holding BlockSize / FrameSize frames.</summary>
    private const int BlockSize = 1 << 18;
    private const int BlockCount = 64;
    private const int FrameSize = 2048;
    private const int FrameCount = BlockSize / FrameSize * BlockCount;

    private const int AfPacket = 17, SockRaw = 3, SockNonblock = 0x800, SockCloexec = 0x80000;
    private const ushort EthPAll = 0x0003;
    private const int SolPacket = 263;
    private const int PacketAddMembership = 1, PacketRxRing = 5, PacketVersion = 10, PacketIgnoreOutgoing = 23;
    private const int TpacketV2 = 1;
    private const ushort PacketMrPromisc = 1;
    private const uint TpStatusKernel = 0, TpStatusUser = 1, TpStatusCsumNotReady = 0x8, TpStatusVlanValid = 0x10,
        TpStatusVlanTpidValid = 0x40, TpStatusCsumValid = 0x80;
    private const int MsgHdrSize = 56, MmsgHdrSize = 64;

    private readonly int _fd;
    private readonly byte* _ring;
    private readonly long _ringBytes;
    private readonly LineRate _lineRate;
    private readonly byte* _messages;
    private readonly byte* _iovecs;
    /// <summary>The next frame of the ring to look at.</summary>
    private int _frame;
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
            SetOption(PacketVersion, TpacketV2, "PACKET_VERSION");
            SetOption(PacketIgnoreOutgoing, 1, "PACKET_IGNORE_OUTGOING");
            var request = stackalloc uint[4]; // tpacket_req
            request[0] = BlockSize;
            request[1] = BlockCount;
            request[2] = FrameSize;
            request[3] = FrameCount;
            if (Libc.SetSockOpt(_fd, SolPacket, PacketRxRing, request, 4 * sizeof(uint)) != 0)
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
            byte* header = _ring + (long)_frame * FrameSize;
            // tpacket2_hdr: status @0, snaplen @8, mac @12, vlan_tci @24, vlan_tpid @26. The kernel wrote it; lengths
            // are still checked.
            uint status = Volatile.Read(ref *(uint*)header);
            if ((status & TpStatusUser) == 0)
            {
                break;
            }
            uint snapLength = *(uint*)(header + 8);
            ushort macOffset = *(ushort*)(header + 12);
            if (macOffset + snapLength <= FrameSize)
            {
                var frame = new ReadOnlySpan<byte>(header + macOffset, (int)snapLength);
                int length = (status & TpStatusVlanValid) != 0
                    ? CopyRetagged(frame, batch.NextBuffer(), *(ushort*)(header + 24),
                        (status & TpStatusVlanTpidValid) != 0 ? *(ushort*)(header + 26) : Norman.Core.Packets.EtherTypes.Vlan)
                    : CopyCut(frame, batch.NextBuffer());
                batch.Append(length);
                if ((status & (TpStatusCsumNotReady | TpStatusCsumValid)) != 0)
                {
                    // Made on this host with the checksum left to offload (a veth peer), or checked by the NIC.
                    batch.MarkChecksumTrusted(batch.Count - 1);
                }
                received++;
            }
            Volatile.Write(ref *(uint*)header, TpStatusKernel);
            _frame = _frame + 1 == FrameCount ? 0 : _frame + 1;
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

    public long TransmitBudget(long now) => _lineRate.Budget(now);

    public IReadOnlyList<int> WakeDescriptors => [_fd];

    /// <summary>The socket is readable, and signalled, for each frame the kernel puts in the ring: not while one waits already.</summary>
    public SleepAllowance PrepareToSleep(long now) =>
        (Volatile.Read(ref *(uint*)(_ring + (long)_frame * FrameSize)) & TpStatusUser) != 0 ? SleepAllowance.NotNow : SleepAllowance.UntilWoken;

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
