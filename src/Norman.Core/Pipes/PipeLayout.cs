namespace Norman.Core.Pipes;

/// <summary>
/// The layout of one ring in shared memory: the pipe ABI between an application and the dataplane.
/// Offsets only, no logic. Indices are free-running 32-bit counters, masked only when a slot is addressed.
/// <code>
///  ring (RingBytes(slotCount, slotSize) bytes, 128-byte aligned)
///  0    ┌─────────────────────────────┐ producer line: written by the producer (the flag cleared by the consumer)
///       │ u32 producer index          │
///       │ u32 wants-room (0/1)        │ set by a producer that found the ring full: the consumer wakes it once
///       │                             │ half the ring is free again (as Linux reports a UDP socket writable)
///  128  ├─────────────────────────────┤ consumer line: written by the consumer only
///       │ u32 consumer index          │
///       │ u32 needs-wakeup (0/1)      │ set by a consumer about to sleep: the producer rings the doorbell
///       │                             │ after its next publish (both ways: the dataplane sleeps too)
///  256  ├─────────────────────────────┤ descriptor: written once by the daemon
///       │ u32 magic 'NRMP', u32 version, u32 slot count, u32 slot size
///  384  ├─────────────────────────────┤ slots[slot count], slot size bytes each
///       │ u32 length │ u32 flags │ u64 reserved │ data (slot size − 16 bytes): one IP packet
///       └─────────────────────────────┘
///  socket region (version 5): the RX ring's header (daemon → application) and the TX ring's (application → daemon)
///  side by side in the first page, then the RX ring's slots from the second page, then the TX ring's, then (TCP) the
///  connection table. An idle socket touches one page of its memory, not one per ring (versions up to 4 laid the two
///  rings end to end, each header before its slots). The doorbell and wake-up are descriptors passed with the memory.
/// </code>
/// Each line is 128 bytes, not 64, so that the adjacent-line prefetcher does not couple the two sides.
/// </summary>
public static class PipeLayout
{
    public const uint Magic = 0x504D524E; // "NRMP" read as little-endian bytes
    /// <summary>5: both ring headers in a socket's first page; 4: the producer's wants-room flag; 3: a TCP socket's connection records carry IPv6 addresses (56 bytes); 2: the separate wake-up and doorbell.</summary>
    public const uint Version = 5;
    public const int LineSize = 128;

    public const int ProducerIndexOffset = 0;
    public const int WantsRoomOffset = 4;
    public const int ConsumerIndexOffset = LineSize;
    public const int NeedsWakeupOffset = LineSize + 4;
    public const int MagicOffset = 2 * LineSize;
    public const int VersionOffset = MagicOffset + 4;
    public const int SlotCountOffset = MagicOffset + 8;
    public const int SlotSizeOffset = MagicOffset + 12;
    public const int SlotsOffset = 3 * LineSize;

    public const int SlotHeaderSize = 16;
    public const int SlotLengthOffset = 0;
    public const int SlotFlagsOffset = 4;

    public const int DefaultSlotCount = 1024;
    /// <summary>2 KiB slots hold a 1500-byte MTU packet with room to spare, and keep slots cache-line aligned.</summary>
    public const int DefaultSlotSize = 2048;
    public const int MinSlotCount = 2;
    public const int MaxSlotCount = 1 << 16;

    public static int SlotDataCapacity(int slotSize) => slotSize - SlotHeaderSize;

    public static long RingBytes(int slotCount, int slotSize) => SlotsOffset + (long)slotCount * slotSize;

    /// <summary>A socket's two ring headers, in one page.</summary>
    public const int SocketHeaderBytes = 4096;

    /// <summary>
    /// In a TCP listener's header page, after the two ring headers: a u32 the daemon adds one to when another process
    /// joins the listener (a forked worker); the listener's stack then hands over the connections it made and its
    /// application has not accepted (a master that never accepts would leave them waiting), with queue-handover.
    /// </summary>
    public const int JoinedOffset = 2 * SlotsOffset;

    /// <summary>
    /// In a TCP listener's header page, a line after <see cref="JoinedOffset"/>: the daemon asks the listener's stack for
    /// one of its connections, which a forked child that inherited its descriptor claims (claim-connection). It writes
    /// the remote port (u32, at <see cref="ConnectionWantedPortOffset"/>) and address (16 bytes, IPv4 as v4-mapped, at
    /// <see cref="ConnectionWantedAddressOffset"/>), then adds one to the u32 here; the stack answers with connection-handover.
    /// </summary>
    public const int ConnectionWantedOffset = JoinedOffset + LineSize;
    public const int ConnectionWantedPortOffset = ConnectionWantedOffset + 4;
    public const int ConnectionWantedAddressOffset = ConnectionWantedOffset + 8;

    public static long SocketRegionBytes(int slotCount, int slotSize) => SocketHeaderBytes + 2L * slotCount * slotSize;

    /// <summary>A socket's whole memory: its two rings, and for TCP the table of its connections (<see cref="ConnectionTable"/>).</summary>
    public static long SocketRegionBytes(int slotCount, int slotSize, bool tcp) =>
        SocketRegionBytes(slotCount, slotSize) + (tcp ? ConnectionTable.Bytes : 0);

    /// <summary>In a socket's memory: the RX ring's header, and its slots from the second page.</summary>
    public static long RxRingOffset => 0;
    public static long RxSlotsOffset => SocketHeaderBytes;

    /// <summary>In a socket's memory: the TX ring's header, right after the RX ring's, and its slots after the RX ring's.</summary>
    public const long TxRingOffset = SlotsOffset;
    public static long TxSlotsOffset(int slotCount, int slotSize) => SocketHeaderBytes + (long)slotCount * slotSize;

    public static bool IsValidGeometry(int slotCount, int slotSize) =>
        slotCount is >= MinSlotCount and <= MaxSlotCount && (slotCount & (slotCount - 1)) == 0
        && slotSize is >= 256 and <= 65536 && slotSize % 64 == 0;
}
