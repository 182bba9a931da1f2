using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Norman.Daemon.Policy.Bpf;

/// <summary>
/// What a filter program decides from an IP frame's EtherType and protocol byte alone, worked out once when it is
/// compiled: `tcp port 9` rejects every UDP frame without looking further, so a tap with that filter need not run it
/// for one. For each protocol number, over IPv4 (the byte at 23) and IPv6 (the next-header byte at 20) frames without
/// a VLAN tag, the program is run on a frame whose other bytes are unknown; if it decides without reading any of
/// them (nor the length), that decision holds for every such frame. Otherwise the frame must be filtered.
/// </summary>
public sealed class ProtocolVerdicts
{
    public enum Verdict : byte
    {
        /// <summary>Run the filter: its decision depends on more than the protocol.</summary>
        Depends,
        Reject,
        Accept,
    }

    /// <summary>Both bytes read are inside every frame this is used for.</summary>
    public const int MinimumFrame = 24;
    private readonly Verdict[] _ipv4 = new Verdict[256];
    private readonly Verdict[] _ipv6 = new Verdict[256];

    public ProtocolVerdicts(BpfProgram program)
    {
        Span<byte> frame = stackalloc byte[MinimumFrame];
        Span<bool> known = stackalloc bool[MinimumFrame];
        foreach (var (table, etherType, protocolAt) in new[] { (_ipv4, 0x0800, 23), (_ipv6, 0x86DD, 20) })
        {
            frame.Clear();
            known.Clear();
            frame[12] = (byte)(etherType >> 8);
            frame[13] = (byte)etherType;
            known[12] = known[13] = known[protocolAt] = true;
            for (int protocol = 0; protocol < 256; protocol++)
            {
                frame[protocolAt] = (byte)protocol;
                uint result = BpfInterpreter.Run(program, frame, MinimumFrame, known, out bool readUnknown);
                table[protocol] = readUnknown ? Verdict.Depends : result == 0 ? Verdict.Reject : Verdict.Accept;
            }
        }
        Ipv4MayKeep = Fold(_ipv4);
        Ipv6MayKeep = Fold(_ipv6);
    }

    /// <summary>Bit p % 64 set: an IPv4 frame of some protocol ≡ p (mod 64) is not rejected unread.</summary>
    public ulong Ipv4MayKeep { get; }
    public ulong Ipv6MayKeep { get; }

    private static ulong Fold(Verdict[] table)
    {
        ulong mask = 0;
        for (int protocol = 0; protocol < table.Length; protocol++)
        {
            if (table[protocol] != Verdict.Reject)
            {
                mask |= 1UL << (protocol % 64);
            }
        }
        return mask;
    }

    /// <summary>The decision for this frame if its protocol settles it; <see cref="Verdict.Depends"/> otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Verdict Of(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < MinimumFrame)
        {
            return Verdict.Depends;
        }
        // Every tap runs this for every frame: no bounds checks past the one above (offsets 12–23 < MinimumFrame,
        // and a table has 256 entries, one per byte value).
        ref byte bytes = ref MemoryMarshal.GetReference(frame);
        int etherType = Unsafe.Add(ref bytes, 12) << 8 | Unsafe.Add(ref bytes, 13);
        return etherType == 0x0800 ? Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_ipv4), Unsafe.Add(ref bytes, 23))
            : etherType == 0x86DD ? Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_ipv6), Unsafe.Add(ref bytes, 20))
            : Verdict.Depends;
    }
}
