using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// The first 8 bytes of an ICMP or ICMPv6 message; for echo, the rest holds identifier and sequence.
/// <code>
///  0     1     2          4     6     8
///  | type| code| checksum | id  | seq |
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct IcmpHeader
{
    public const int Size = 8;
    public const byte EchoReplyV4 = 0;
    public const byte DestinationUnreachableV4 = 3;
    public const byte EchoRequestV4 = 8;
    public const byte EchoRequestV6 = 128;
    public const byte EchoReplyV6 = 129;
    public const byte PortUnreachableCode = 3;

    [FieldOffset(0)] private byte _type;
    [FieldOffset(1)] private byte _code;
    [FieldOffset(2)] private ushort _checksum;
    [FieldOffset(4)] private ushort _identifier;
    [FieldOffset(6)] private ushort _sequence;

    public byte Type { readonly get => _type; set => _type = value; }
    public byte Code { readonly get => _code; set => _code = value; }
    public ushort Checksum { readonly get => NetworkOrder.Swap(_checksum); set => _checksum = NetworkOrder.Swap(value); }
    public ushort Identifier { readonly get => NetworkOrder.Swap(_identifier); set => _identifier = NetworkOrder.Swap(value); }
    public ushort Sequence { readonly get => NetworkOrder.Swap(_sequence); set => _sequence = NetworkOrder.Swap(value); }

    public static ref IcmpHeader At(Span<byte> message) => ref MemoryMarshal.AsRef<IcmpHeader>(message);
    public static ref readonly IcmpHeader At(ReadOnlySpan<byte> message) => ref MemoryMarshal.AsRef<IcmpHeader>(message);
}
