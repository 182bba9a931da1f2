using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Norman.Core.Packets;

/// <summary>Converts between host order and the wire's big-endian order; the JIT folds the test away.</summary>
public static class NetworkOrder
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Swap(ushort value) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Swap(uint value) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value;
}
