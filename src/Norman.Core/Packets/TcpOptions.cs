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
        for (int i = 0; i < options.Length;)
        {
            byte kind = options[i];
            if (kind == 0)
            {
                break; // end of the list
            }
            if (kind == 1)
            {
                i++; // no-operation, one byte
                continue;
            }
            if (i + 1 >= options.Length || options[i + 1] < 2 || i + options[i + 1] > options.Length)
            {
                break;
            }
            if (kind == 2 && options[i + 1] == 4)
            {
                mss = BinaryPrimitives.ReadUInt16BigEndian(options[(i + 2)..]);
            }
            else if (kind == 3 && options[i + 1] == 3)
            {
                scale = options[i + 2];
            }
            else if (kind == 4 && options[i + 1] == 2)
            {
                sackPermitted = true;
            }
            else if (kind == 8 && options[i + 1] == 10)
            {
                timestamps = true;
                value = BinaryPrimitives.ReadUInt32BigEndian(options[(i + 2)..]);
                echo = BinaryPrimitives.ReadUInt32BigEndian(options[(i + 6)..]);
            }
            i += options[i + 1];
        }
        return new Offered(mss, scale, timestamps, value, echo, sackPermitted);
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
        for (int i = 0; i < options.Length;)
        {
            byte kind = options[i];
            if (kind == 0)
            {
                break;
            }
            if (kind == 1)
            {
                i++;
                continue;
            }
            if (i + 1 >= options.Length || options[i + 1] < 2 || i + options[i + 1] > options.Length)
            {
                break;
            }
            if (kind == 5 && (options[i + 1] - 2) % 8 == 0)
            {
                int count = Math.Min((options[i + 1] - 2) / 8, blocks.Length);
                for (int b = 0; b < count; b++)
                {
                    blocks[b] = (BinaryPrimitives.ReadUInt32BigEndian(options[(i + 2 + 8 * b)..]), BinaryPrimitives.ReadUInt32BigEndian(options[(i + 6 + 8 * b)..]));
                }
                return count;
            }
            i += options[i + 1];
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
