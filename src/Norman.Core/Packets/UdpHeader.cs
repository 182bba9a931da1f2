using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// A UDP header (RFC 768).
/// <code>
///  0          2          4        6          8
///  | src port | dst port | length | checksum |
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct UdpHeader
{
    public const int Size = 8;

    [FieldOffset(0)] private ushort _sourcePort;
    [FieldOffset(2)] private ushort _destinationPort;
    [FieldOffset(4)] private ushort _length;
    [FieldOffset(6)] private ushort _checksum;

    public ushort SourcePort { readonly get => NetworkOrder.Swap(_sourcePort); set => _sourcePort = NetworkOrder.Swap(value); }
    public ushort DestinationPort { readonly get => NetworkOrder.Swap(_destinationPort); set => _destinationPort = NetworkOrder.Swap(value); }
    public ushort Length { readonly get => NetworkOrder.Swap(_length); set => _length = NetworkOrder.Swap(value); }
    public ushort Checksum { readonly get => NetworkOrder.Swap(_checksum); set => _checksum = NetworkOrder.Swap(value); }

    public static ref UdpHeader At(Span<byte> segment) => ref MemoryMarshal.AsRef<UdpHeader>(segment);
    public static ref readonly UdpHeader At(ReadOnlySpan<byte> segment) => ref MemoryMarshal.AsRef<UdpHeader>(segment);
}
