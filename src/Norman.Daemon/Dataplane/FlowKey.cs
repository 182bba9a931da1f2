using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// What the demultiplexer looks a packet up by, from the host's side: protocol, local and remote address and port.
/// A listener's key has a zero remote; a wildcard listener's also has an unspecified local address.
/// </summary>
/// <remarks>Laid out by the runtime (addresses first, no padding between the small fields): 40 bytes rather than 56, in
/// tables of a million flows.</remarks>
[StructLayout(LayoutKind.Auto)]
public readonly record struct FlowKey(byte Protocol, NetAddress LocalAddress, ushort LocalPort, NetAddress RemoteAddress, ushort RemotePort)
{
    public static FlowKey Listener(byte protocol, NetAddress localAddress, ushort localPort) =>
        new(protocol, localAddress, localPort, default, 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Hash()
    {
        // One multiply-xorshift round per word (a 64-bit finaliser in the style of splitmix): cheap and well mixed.
        ulong h = Mix(LocalAddress.Low ^ ((ulong)LocalPort << 48) ^ ((ulong)Protocol << 40));
        h = Mix(h ^ RemoteAddress.Low ^ ((ulong)RemotePort << 32));
        h = Mix(h ^ LocalAddress.High ^ (RemoteAddress.High * 0x9E37_79B9_7F4A_7C15UL));
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix(ulong x)
    {
        x ^= x >> 33;
        x *= 0xFF51_AFD7_ED55_8CCDUL;
        x ^= x >> 33;
        return x;
    }
}
