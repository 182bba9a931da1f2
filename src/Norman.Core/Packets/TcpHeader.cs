using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// A TCP header (RFC 9293); options follow when the data offset is over 5 words.
/// <code>
///  0     2     4     8     12         13     14     16        18    20
///  | src | dst | seq | ack | offset   | flags| window| checksum| urg |
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct TcpHeader
{
    public const int Size = 20;
    public const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10, Urg = 0x20, Ece = 0x40, Cwr = 0x80;

    [FieldOffset(0)] private ushort _sourcePort;
    [FieldOffset(2)] private ushort _destinationPort;
    [FieldOffset(4)] private uint _sequence;
    [FieldOffset(8)] private uint _acknowledgement;
    [FieldOffset(12)] private byte _dataOffset;
    [FieldOffset(13)] private byte _flags;
    [FieldOffset(14)] private ushort _window;
    [FieldOffset(16)] private ushort _checksum;

    public ushort SourcePort { readonly get => NetworkOrder.Swap(_sourcePort); set => _sourcePort = NetworkOrder.Swap(value); }
    public ushort DestinationPort { readonly get => NetworkOrder.Swap(_destinationPort); set => _destinationPort = NetworkOrder.Swap(value); }
    public uint Sequence { readonly get => NetworkOrder.Swap(_sequence); set => _sequence = NetworkOrder.Swap(value); }
    public uint Acknowledgement { readonly get => NetworkOrder.Swap(_acknowledgement); set => _acknowledgement = NetworkOrder.Swap(value); }
    public readonly int HeaderLength => (_dataOffset >> 4) * 4;
    public byte Flags { readonly get => _flags; set => _flags = value; }
    public ushort Window { readonly get => NetworkOrder.Swap(_window); set => _window = NetworkOrder.Swap(value); }
    public ushort Checksum { readonly get => NetworkOrder.Swap(_checksum); set => _checksum = NetworkOrder.Swap(value); }

    public static ref readonly TcpHeader At(ReadOnlySpan<byte> segment) => ref MemoryMarshal.AsRef<TcpHeader>(segment);
}
