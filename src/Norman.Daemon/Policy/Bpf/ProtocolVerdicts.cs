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
    private const int Ipv4ProtocolAt = 23;
    private const int Ipv6ProtocolAt = 20;
    private readonly Verdict[] _ipv4 = new Verdict[256];
    private readonly Verdict[] _ipv6 = new Verdict[256];

    public ProtocolVerdicts(BpfProgram program)
    {
        Span<byte> frame = stackalloc byte[MinimumFrame];
        Span<bool> known = stackalloc bool[MinimumFrame];
        foreach (var (table, etherType, protocolAt) in new[] { (_ipv4, 0x0800, Ipv4ProtocolAt), (_ipv6, 0x86DD, Ipv6ProtocolAt) })
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
        // A table has 256 entries, one per byte value: no bounds check.
        var (version, protocol) = IpVersionOf(ref MemoryMarshal.GetReference(frame), frame.Length);
        return version == 4 ? Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_ipv4), protocol)
            : version == 6 ? Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_ipv6), protocol)
            : Verdict.Depends;
    }

    /// <summary>
    /// The IP version of a frame as the tables see it, 4 or 6, with its protocol byte (IPv6's next header); 0 for a
    /// frame of another EtherType, or shorter than <see cref="MinimumFrame"/>. Every tap and every batch with a tap
    /// reads each frame this way: one length check, then no bounds checks (offsets 12–23 are inside such a frame).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Version, byte Protocol) IpVersionOf(ref byte frame, int length)
    {
        if (length < MinimumFrame)
        {
            return (0, (byte)0);
        }
        int etherType = Unsafe.Add(ref frame, 12) << 8 | Unsafe.Add(ref frame, 13);
        return etherType == 0x0800 ? (4, Unsafe.Add(ref frame, Ipv4ProtocolAt))
            : etherType == 0x86DD ? (6, Unsafe.Add(ref frame, Ipv6ProtocolAt))
            : (0, (byte)0);
    }
}
