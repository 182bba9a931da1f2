using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// An ARP packet for IPv4 over Ethernet (RFC 826).
/// <code>
///  0      2      4    5    6      8           14          18          24          28
///  | htype| ptype|hlen|plen| oper | sender mac| sender ip | target mac| target ip |
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct ArpPacket
{
    public const int Size = 28;
    public const ushort Request = 1;
    public const ushort Reply = 2;

    [FieldOffset(0)] private ushort _hardwareType;
    [FieldOffset(2)] private ushort _protocolType;
    [FieldOffset(4)] private byte _hardwareLength;
    [FieldOffset(5)] private byte _protocolLength;
    [FieldOffset(6)] private ushort _operation;

    public readonly bool IsEthernetIPv4 =>
        NetworkOrder.Swap(_hardwareType) == 1 && NetworkOrder.Swap(_protocolType) == EtherTypes.IPv4
        && _hardwareLength == 6 && _protocolLength == 4;

    public readonly ushort Operation => NetworkOrder.Swap(_operation);

    public static MacAddress SenderMac(ReadOnlySpan<byte> arp) => MacAddress.Read(arp[8..]);
    public static NetAddress SenderIp(ReadOnlySpan<byte> arp) => NetAddress.ReadV4(arp[14..]);
    public static MacAddress TargetMac(ReadOnlySpan<byte> arp) => MacAddress.Read(arp[18..]);
    public static NetAddress TargetIp(ReadOnlySpan<byte> arp) => NetAddress.ReadV4(arp[24..]);

    public static void Write(Span<byte> arp, ushort operation, MacAddress senderMac, NetAddress senderIp, MacAddress targetMac, NetAddress targetIp)
    {
        ref var header = ref MemoryMarshal.AsRef<ArpPacket>(arp);
        header._hardwareType = NetworkOrder.Swap((ushort)1);
        header._protocolType = NetworkOrder.Swap(EtherTypes.IPv4);
        header._hardwareLength = 6;
        header._protocolLength = 4;
        header._operation = NetworkOrder.Swap(operation);
        senderMac.Write(arp[8..]);
        senderIp.WriteV4(arp[14..]);
        targetMac.Write(arp[18..]);
        targetIp.WriteV4(arp[24..]);
    }
}
