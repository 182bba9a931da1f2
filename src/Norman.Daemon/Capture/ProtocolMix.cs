using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Capture;

/// <summary>
/// Which IP protocols a batch holds, coarsely (protocol number modulo 64, for IPv4 and IPv6 apart, and whether any
/// frame is something else): worked out once per batch for every tap, so that a tap whose filter rejects each of
/// them unread (<see cref="ProtocolVerdicts"/>) passes the batch over instead of looking at its frames one by one.
/// It reads the same bytes as <see cref="ProtocolVerdicts.Of"/>, of every frame, whatever earlier stages decided.
/// </summary>
public readonly struct ProtocolMix
{
    private ProtocolMix(ulong ipv4, ulong ipv6, bool other)
    {
        Ipv4 = ipv4;
        Ipv6 = ipv6;
        Other = other;
    }

    /// <summary>Bit p % 64 set: an IPv4 frame of protocol p is in the batch.</summary>
    public ulong Ipv4 { get; }
    public ulong Ipv6 { get; }
    /// <summary>A frame that is neither (or too short to tell) is in the batch.</summary>
    public bool Other { get; }

    public static ProtocolMix Of(PacketBatch batch)
    {
        ulong ipv4 = 0, ipv6 = 0;
        bool other = false;
        // Every tap's cost starts here, for every frame: one length check each, no span (offsets 12–23 are inside
        // any frame of MinimumFrame bytes, and every frame's buffer is FrameSize long).
        var lengths = batch.Lengths;
        ref byte frame = ref MemoryMarshal.GetReference(batch.Buffers);
        for (int i = 0; i < lengths.Length; i++, frame = ref Unsafe.Add(ref frame, PacketBatch.FrameSize))
        {
            if (lengths[i] < ProtocolVerdicts.MinimumFrame)
            {
                other = true;
                continue;
            }
            int etherType = Unsafe.Add(ref frame, 12) << 8 | Unsafe.Add(ref frame, 13);
            if (etherType == 0x0800)
            {
                ipv4 |= 1UL << (Unsafe.Add(ref frame, 23) % 64);
            }
            else if (etherType == 0x86DD)
            {
                ipv6 |= 1UL << (Unsafe.Add(ref frame, 20) % 64);
            }
            else
            {
                other = true;
            }
        }
        return new ProtocolMix(ipv4, ipv6, other);
    }
}
