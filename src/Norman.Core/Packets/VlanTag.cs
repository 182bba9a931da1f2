using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// An 802.1Q tag that follows the Ethernet addresses: TCI (priority 3 bits, DEI 1, VLAN id 12), then the inner EtherType.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct VlanTag
{
    public const int Size = 4;

    [FieldOffset(0)] private ushort _tci;
    [FieldOffset(2)] private ushort _etherType;

    public readonly ushort VlanId => (ushort)(NetworkOrder.Swap(_tci) & 0x0FFF);
    public readonly byte Priority => (byte)(NetworkOrder.Swap(_tci) >> 13);
    public ushort Tci { readonly get => NetworkOrder.Swap(_tci); set => _tci = NetworkOrder.Swap(value); }
    public ushort EtherType { readonly get => NetworkOrder.Swap(_etherType); set => _etherType = NetworkOrder.Swap(value); }
}
