using System.Runtime.CompilerServices;
using Norman.Core.Packets;

namespace Norman.Core.Pipes;

/// <summary>
/// A TCP socket's connections as its application's stack reports them, for `norman ss`: an area after the two
/// rings of a TCP socket's memory, which the client library rewrites about ten times a second and the daemon reads
/// (racily, as ss reads a kernel's tables). The daemon trusts none of it beyond display: counts are clamped and a
/// record can only speak of the socket's own port, since the daemon adds the local end itself.
/// <code>
///  0   u32 count (published last, with a release store)
///  8   u64 challenge ACKs the socket's connections sent, all told | u64 resets they ignored (RFC 5961; both monotonic)
///  64  records[Capacity], 56 bytes each:
///      u64 remote address, high | u64 low (as NetAddress: IPv4 v4-mapped) | u16 remote port | u8 state | u8 features
///      u32 send-q | u32 recv-q | u32 smoothed RTT (µs) | u16 RTO (ms) | u16 MSS | u32 congestion window (bytes)
///      u32 segments retransmitted | u32 challenge ACKs sent | u32 resets ignored | u32 0
/// </code>
/// 32,768 connections in 1.75 MiB (touched only as used); a socket with more lists the first 32,768.
/// </summary>
public static unsafe class ConnectionTable
{
    public const int Capacity = 1 << 15;
    public const int RecordSize = 56;
    public const int ChallengeAcksOffset = 8;
    public const int ResetsIgnoredOffset = 16;
    public const int HeaderSize = 64;
    public const long Bytes = HeaderSize + (long)Capacity * RecordSize;

    /// <summary>Where the table starts in a TCP socket's memory: right after its rings.</summary>
    public static long Offset(int slotCount, int slotSize) => PipeLayout.SocketRegionBytes(slotCount, slotSize);

    /// <summary>
    /// One connection; the rest are what `ss -ti` shows of a kernel's (0 where not yet known), the congestion control as
    /// a number (<see cref="CongestionControlNames"/>) with a bit for timestamps (see Features).
    /// </summary>
    public readonly record struct Record(NetAddress RemoteAddress, ushort RemotePort, byte State, uint SendQueue, uint ReceiveQueue,
        uint RttMicroseconds = 0, ushort RtoMilliseconds = 0, ushort Mss = 0, uint CongestionWindow = 0, uint Retransmits = 0,
        uint ChallengeAcks = 0, uint ResetsIgnored = 0, byte Features = 0);

    /// <summary>The congestion control a record's number stands for, in `ss -ti`'s words (0: not reported).</summary>
    public static readonly string?[] CongestionControlNames = [null, "cubic", "reno"];

    /// <summary>The name of a record's congestion control, or null for a number no stack writes.</summary>
    public static string? CongestionControlName(byte features) =>
        (features & 0x0F) < CongestionControlNames.Length ? CongestionControlNames[features & 0x0F] : null;

    /// <summary>Whether a record's connection uses timestamps (RFC 7323).</summary>
    public static bool UsesTimestamps(byte features) => (features & TimestampsBit) != 0;

    /// <summary>Whether a record's connection uses SACK (RFC 2018).</summary>
    public static bool UsesSack(byte features) => (features & SackBit) != 0;

    private const byte TimestampsBit = 0x10;
    private const byte SackBit = 0x20;

    /// <summary>The byte a record carries: the congestion control's number, and whether timestamps and SACK are in use.</summary>
    public static byte Features(byte congestionControl, bool timestamps, bool sack) =>
        (byte)(congestionControl | (timestamps ? TimestampsBit : 0) | (sack ? SackBit : 0));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(byte* table, int index, in Record record)
    {
        byte* at = table + HeaderSize + (long)index * RecordSize;
        *(ulong*)at = record.RemoteAddress.High;
        *(ulong*)(at + 8) = record.RemoteAddress.Low;
        *(ushort*)(at + 16) = record.RemotePort;
        at[18] = record.State;
        at[19] = record.Features;
        *(uint*)(at + 20) = record.SendQueue;
        *(uint*)(at + 24) = record.ReceiveQueue;
        *(uint*)(at + 28) = record.RttMicroseconds;
        *(ushort*)(at + 32) = record.RtoMilliseconds;
        *(ushort*)(at + 34) = record.Mss;
        *(uint*)(at + 36) = record.CongestionWindow;
        *(uint*)(at + 40) = record.Retransmits;
        *(uint*)(at + 44) = record.ChallengeAcks;
        *(uint*)(at + 48) = record.ResetsIgnored;
    }

    /// <summary>The socket's totals, for metrics: every connection's challenge ACKs and ignored resets, the closed ones' too.</summary>
    public static void WriteTotals(byte* table, ulong challengeAcks, ulong resetsIgnored)
    {
        *(ulong*)(table + ChallengeAcksOffset) = challengeAcks;
        *(ulong*)(table + ResetsIgnoredOffset) = resetsIgnored;
    }

    /// <summary>The totals as the application last wrote them (display only: the daemon trusts them no further).</summary>
    public static (ulong ChallengeAcks, ulong ResetsIgnored) ReadTotals(byte* table) =>
        (Volatile.Read(ref *(ulong*)(table + ChallengeAcksOffset)), Volatile.Read(ref *(ulong*)(table + ResetsIgnoredOffset)));

    public static void Publish(byte* table, int count) => Volatile.Write(ref *(uint*)table, (uint)count);

    /// <summary>The last state a record may carry (TIME-WAIT in the client library's numbering).</summary>
    public const byte MaxState = 9;

    /// <summary>
    /// The records as they stand. The count is read once and clamped to the capacity; each field is read once into
    /// the copy; a record no stack writes (a state past <see cref="MaxState"/>, or no remote port) is left out, so
    /// garbage in one application's table shows as fewer rows, never as a failed listing.
    /// </summary>
    public static List<Record> Read(byte* table)
    {
        int count = (int)Math.Min(Volatile.Read(ref *(uint*)table), Capacity);
        var records = new List<Record>(Math.Min(count, 1024));
        for (int i = 0; i < count; i++)
        {
            byte* at = table + HeaderSize + (long)i * RecordSize;
            var record = new Record(new NetAddress(*(ulong*)at, *(ulong*)(at + 8)), *(ushort*)(at + 16), at[18], *(uint*)(at + 20),
                *(uint*)(at + 24), *(uint*)(at + 28), *(ushort*)(at + 32), *(ushort*)(at + 34), *(uint*)(at + 36), *(uint*)(at + 40),
                *(uint*)(at + 44), *(uint*)(at + 48), at[19]);
            if (record.State <= MaxState && record.RemotePort != 0)
            {
                records.Add(record);
            }
        }
        return records;
    }
}
