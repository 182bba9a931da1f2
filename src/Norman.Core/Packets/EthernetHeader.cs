using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// An Ethernet II header as it lies on the wire.
/// <code>
///  0        6        12   14
///  | dst    | src    | type |
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct EthernetHeader
{
    public const int Size = 14;

    [FieldOffset(0)] private byte _destination;
    [FieldOffset(6)] private byte _source;
    [FieldOffset(12)] private ushort _etherType;

    public ushort EtherType { readonly get => NetworkOrder.Swap(_etherType); set => _etherType = NetworkOrder.Swap(value); }

    public static ref EthernetHeader At(Span<byte> frame) => ref MemoryMarshal.AsRef<EthernetHeader>(frame);

    public static MacAddress Destination(ReadOnlySpan<byte> frame) => MacAddress.Read(frame);
    public static MacAddress Source(ReadOnlySpan<byte> frame) => MacAddress.Read(frame[6..]);

    public static void Write(Span<byte> frame, MacAddress destination, MacAddress source, ushort etherType)
    {
        destination.Write(frame);
        source.Write(frame[6..]);
        At(frame).EtherType = etherType;
    }
}

/// <summary>The EtherType values Norman understands.</summary>
public static class EtherTypes
{
    public const ushort IPv4 = 0x0800;
    public const ushort Arp = 0x0806;
    public const ushort Vlan = 0x8100;
    public const ushort QinQ = 0x88A8;
    public const ushort IPv6 = 0x86DD;
}
