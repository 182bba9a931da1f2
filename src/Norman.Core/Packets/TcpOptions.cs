using System.Buffers.Binary;

namespace Norman.Core.Packets;

/// <summary>
/// The options a TCP stack acts on, read from a segment's option bytes: MSS, window scale and SACK-permitted (a SYN's),
/// and the timestamps (RFC 7323, any segment). The walk is bounded by the bytes given: a malformed list (a length under 2, or
/// past the end) stops it, keeping what was read before.
/// </summary>
public static class TcpOptions
{
    /// <summary>The timestamps option: NOP, NOP, kind 8, length 10, TSval, TSecr (12 bytes, as every stack aligns it).</summary>
    public const int TimestampsLength = 12;

    /// <summary>
    /// What the options say: MSS and window shift (null: not offered; the shift as sent, not capped at 14), timestamps,
    /// and SACK-permitted (RFC 2018).
    /// </summary>
    public readonly record struct Offered(ushort? Mss, byte? WindowScale, bool HasTimestamps, uint TimestampValue, uint TimestampEcho,
        bool SackPermitted = false);

    /// <summary>The most SACK blocks an option carries beside timestamps (3), and without them (4): 40 bytes of options.</summary>
    public static int MaxSackBlocks(bool withTimestamps) => withTimestamps ? 3 : 4;

    public static Offered Read(ReadOnlySpan<byte> options)
    {
        ushort? mss = null;
        byte? scale = null;
        bool timestamps = false, sackPermitted = false;
        uint value = 0, echo = 0;
        int at = 0;
        while (Next(options, ref at, out byte kind, out var body))
        {
            if (kind == 2 && body.Length == 2)
            {
                mss = BinaryPrimitives.ReadUInt16BigEndian(body);
            }
            else if (kind == 3 && body.Length == 1)
            {
                scale = body[0];
            }
            else if (kind == 4 && body.IsEmpty)
            {
                sackPermitted = true;
            }
            else if (kind == 8 && body.Length == 8)
            {
                timestamps = true;
                value = BinaryPrimitives.ReadUInt32BigEndian(body);
                echo = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
            }
        }
        return new Offered(mss, scale, timestamps, value, echo, sackPermitted);
    }

    /// <summary>
    /// The option at <paramref name="at"/> (its kind and the bytes after its length), moving past it; false at the end
    /// of the list, or at a malformed option (a length under 2, or past the end), which ends the walk.
    /// </summary>
    private static bool Next(ReadOnlySpan<byte> options, ref int at, out byte kind, out ReadOnlySpan<byte> body)
    {
        while (at < options.Length && options[at] == 1)
        {
            at++; // no-operation, one byte
        }
        kind = at < options.Length ? options[at] : (byte)0;
        body = default;
        if (kind == 0 || at + 1 >= options.Length || options[at + 1] < 2 || at + options[at + 1] > options.Length)
        {
            return false;
        }
        body = options.Slice(at + 2, options[at + 1] - 2);
        at += options[at + 1];
        return true;
    }

    /// <summary>
    /// Writes SACK blocks (RFC 2018 §3), NOP-aligned: 2 + 2 + 8 bytes a block. Returns the bytes written.
    /// </summary>
    public static int WriteSack(Span<byte> options, ReadOnlySpan<(uint Left, uint Right)> blocks)
    {
        options[0] = 1;
        options[1] = 1;
        options[2] = 5;
        options[3] = (byte)(2 + 8 * blocks.Length);
        for (int b = 0; b < blocks.Length; b++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(options[(4 + 8 * b)..], blocks[b].Left);
            BinaryPrimitives.WriteUInt32BigEndian(options[(8 + 8 * b)..], blocks[b].Right);
        }
        return 4 + 8 * blocks.Length;
    }

    /// <summary>Reads the SACK blocks of a segment's options (none when absent or malformed); at most <paramref name="blocks"/>' length.</summary>
    public static int ReadSack(ReadOnlySpan<byte> options, Span<(uint Left, uint Right)> blocks)
    {
        int at = 0;
        while (Next(options, ref at, out byte kind, out var body))
        {
            if (kind == 5 && body.Length % 8 == 0)
            {
                int count = Math.Min(body.Length / 8, blocks.Length);
                for (int b = 0; b < count; b++)
                {
                    blocks[b] = (BinaryPrimitives.ReadUInt32BigEndian(body[(8 * b)..]), BinaryPrimitives.ReadUInt32BigEndian(body[(8 * b + 4)..]));
                }
                return count;
            }
        }
        return 0;
    }

    /// <summary>Writes the timestamps option, NOP-aligned: <see cref="TimestampsLength"/> bytes.</summary>
    public static void WriteTimestamps(Span<byte> options, uint value, uint echo)
    {
        options[0] = 1;
        options[1] = 1;
        options[2] = 8;
        options[3] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(options[4..], value);
        BinaryPrimitives.WriteUInt32BigEndian(options[8..], echo);
    }
}
