using System.Buffers.Binary;
using System.Text;

namespace Norman.Core.Capture;

/// <summary>
/// One captured packet in a capture ring slot (the ring itself is a <see cref="Pipes.PipeLayout"/> ring in a
/// memfd the daemon hands to the capturing process). Written by the dataplane, read by `norman capture`.
/// <code>
///  0   u64 timestamp (Unix nanoseconds)   8   u32 wire length   12  u8 direction (0 in, 1 out)
///  13  u8 filter verdict (0: passed, 1: dropped, 2: rejected)   14  u8 why the dataplane dropped it (0: it did not; the daemon's
///      drop reasons, as `norman stats` names them)                  15  u8 reserved
///  16  i32 owner pid (0: none)            20  i32 owner uid     24  owner process name, 16 bytes, NUL-padded
///  40  i64 handle of the rule that decided (0: the chain's policy)   48  the frame, as captured (at most the snap length)
/// </code>
/// </summary>
public static class CaptureRecord
{
    public const int HeaderSize = 48;
    public const int SlotSize = 2112;
    public const int SlotCount = 4096;
    public const int MaxSnapLength = SlotSize - 16 - HeaderSize;
    public const byte Inbound = 0;
    public const byte Outbound = 1;

    public static void WriteHeader(Span<byte> slot, long unixNanoseconds, int wireLength, byte direction, int pid, int uid, ReadOnlySpan<byte> processName,
        byte verdict = 0, long rule = 0, byte dropped = 0)
    {
        BinaryPrimitives.WriteInt64LittleEndian(slot, unixNanoseconds);
        BinaryPrimitives.WriteInt32LittleEndian(slot[8..], wireLength);
        slot[12] = direction;
        slot[13] = verdict;
        slot[14] = dropped;
        slot[15] = 0;
        BinaryPrimitives.WriteInt32LittleEndian(slot[16..], pid);
        BinaryPrimitives.WriteInt32LittleEndian(slot[20..], uid);
        var name = slot.Slice(24, 16);
        name.Clear();
        processName[..Math.Min(processName.Length, 16)].CopyTo(name);
        BinaryPrimitives.WriteInt64LittleEndian(slot[40..], rule);
    }

    /// <summary>A record read back, copied out of the ring.</summary>
    public readonly record struct Packet(long UnixNanoseconds, int WireLength, byte Direction, int Pid, int Uid, string ProcessName, byte[] Frame,
        byte Verdict = 0, long Rule = 0, byte Dropped = 0)
    {
        /// <summary>"dropped by rule 3", "rejected by the policy", or empty for a packet the filter let through.</summary>
        public string VerdictText => Verdict == 0 ? "" : $"{(Verdict == 2 ? "rejected" : "dropped")} by {(Rule == 0 ? "the policy" : $"rule {Rule}")}";
    }

    public static Packet Read(ReadOnlySpan<byte> slot)
    {
        var name = slot.Slice(24, 16);
        int end = name.IndexOf((byte)0);
        return new Packet(
            BinaryPrimitives.ReadInt64LittleEndian(slot),
            BinaryPrimitives.ReadInt32LittleEndian(slot[8..]),
            slot[12],
            BinaryPrimitives.ReadInt32LittleEndian(slot[16..]),
            BinaryPrimitives.ReadInt32LittleEndian(slot[20..]),
            Encoding.ASCII.GetString(end < 0 ? name : name[..end]),
            slot[HeaderSize..].ToArray(),
            slot[13],
            BinaryPrimitives.ReadInt64LittleEndian(slot[40..]),
            slot[14]);
    }
}
