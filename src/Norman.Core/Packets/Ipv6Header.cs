using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// The fixed IPv6 header (RFC 8200); extension headers follow and are walked by <see cref="PacketParser"/>.
/// <code>
///  0                   4            6       7       8     24    40
///  | ver/class/flow    | payload len| next  | hops  | src | dst |
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct Ipv6Header
{
    public const int Size = 40;

    [FieldOffset(0)] private uint _versionClassFlow;
    [FieldOffset(4)] private ushort _payloadLength;
    [FieldOffset(6)] private byte _nextHeader;
    [FieldOffset(7)] private byte _hopLimit;

    public readonly int Version => (int)(NetworkOrder.Swap(_versionClassFlow) >> 28);
    public readonly byte TrafficClass => (byte)(NetworkOrder.Swap(_versionClassFlow) >> 20);
    public ushort PayloadLength { readonly get => NetworkOrder.Swap(_payloadLength); set => _payloadLength = NetworkOrder.Swap(value); }
    public byte NextHeader { readonly get => _nextHeader; set => _nextHeader = value; }
    public byte HopLimit { readonly get => _hopLimit; set => _hopLimit = value; }

    public static NetAddress Source(ReadOnlySpan<byte> packet) => NetAddress.ReadV6(packet[8..]);
    public static NetAddress Destination(ReadOnlySpan<byte> packet) => NetAddress.ReadV6(packet[24..]);

    public static ref Ipv6Header At(Span<byte> packet) => ref MemoryMarshal.AsRef<Ipv6Header>(packet);
    public static ref readonly Ipv6Header At(ReadOnlySpan<byte> packet) => ref MemoryMarshal.AsRef<Ipv6Header>(packet);

    public static void Write(Span<byte> packet, byte nextHeader, NetAddress source, NetAddress destination, int payloadLength, byte hopLimit = 64)
    {
        ref var header = ref At(packet);
        header._versionClassFlow = NetworkOrder.Swap(6u << 28);
        header.PayloadLength = (ushort)payloadLength;
        header._nextHeader = nextHeader;
        header._hopLimit = hopLimit;
        source.WriteV6(packet[8..]);
        destination.WriteV6(packet[24..]);
    }
}
