using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Capture;

/// <summary>
/// Which IP protocols a batch holds, coarsely (protocol number modulo 64, for IPv4 and IPv6 apart, and whether any
/// frame is something else): worked out once per batch for every tap, so that a tap whose filter rejects each of
/// them unread (<see cref="ProtocolVerdicts"/>) passes the batch over instead of looking at its frames one by one.
/// It reads each frame as <see cref="ProtocolVerdicts.Of"/> does (<see cref="ProtocolVerdicts.IpVersionOf"/>), whatever earlier stages decided.
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
        // Every tap's cost starts here, for every frame: no span built, the buffers walked FrameSize apart.
        var lengths = batch.Lengths;
        ref byte frame = ref MemoryMarshal.GetReference(batch.Buffers);
        for (int i = 0; i < lengths.Length; i++, frame = ref Unsafe.Add(ref frame, PacketBatch.FrameSize))
        {
            var (version, protocol) = ProtocolVerdicts.IpVersionOf(ref frame, lengths[i]);
            if (version == 4)
            {
                ipv4 |= 1UL << (protocol % 64);
            }
            else if (version == 6)
            {
                ipv6 |= 1UL << (protocol % 64);
            }
            else
            {
                other = true;
            }
        }
        return new ProtocolMix(ipv4, ipv6, other);
    }
}
