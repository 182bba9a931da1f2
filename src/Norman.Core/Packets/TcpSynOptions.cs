using System.Buffers.Binary;

namespace Norman.Core.Packets;

/// <summary>
/// The two options a SYN negotiates, MSS and window scale, read from a segment's option bytes. The walk is bounded
/// by the bytes given: a malformed list (a length under 2, or past the end) stops it, keeping what was read before.
/// </summary>
public static class TcpSynOptions
{
    /// <summary>The MSS (null: not offered) and window shift (null: not offered; as sent, not yet capped at 14).</summary>
    public static (ushort? Mss, byte? WindowScale) Read(ReadOnlySpan<byte> options)
    {
        ushort? mss = null;
        byte? scale = null;
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
            i += options[i + 1];
        }
        return (mss, scale);
    }
}
