using System.Buffers.Binary;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Ports.Xdp;

/// <summary>
/// The XDP program that shares an interface between Norman and the kernel: what is Norman's goes to the AF_XDP socket
/// of the queue it arrived on (<c>bpf_redirect_map</c> on the socket map), everything else goes on to the kernel
/// (<c>XDP_PASS</c>), and so does anything the program cannot read whole. Two ways to decide what is Norman's:
/// <list type="bullet">
/// <item><b>own address</b>: ARP asking for Norman's IPv4 address, IPv4 to it, IPv6 to its address or that address's
/// solicited-node group (neighbour discovery); Norman does the host's duties for them, as on a TAP;</item>
/// <item><b>shared address</b> (the kernel's own address): only UDP and TCP to a port a Norman socket holds, looked up
/// in the ports map (the port's entry: 1 for UDP, 2 for TCP, both bits when both); ARP, ICMP, fragments, IPv4 options
/// and every other port stay the kernel's.</item>
/// </list>
/// Packet reads compare in network order: a field is loaded as the bytes lie, and compared with constants laid out
/// the same way (so nothing is byte-swapped but the port, which indexes the map).
/// </summary>
public static class SteeringProgram
{
    private const int R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R10 = 10;
    private const int XdpPass = 2;
    private const int HelperMapLookupElement = 1, HelperRedirectMap = 51;
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index.
    private const short MdData = 0, MdDataEnd = 4, MdRxQueueIndex = 16;
    public const uint PortUdp = 1, PortTcp = 2;

    /// <summary>The program for an address of Norman's own (and its IPv6 addresses, if it has any).</summary>
    public static ulong[] OwnAddress(int socketsMap, NetAddress address, IReadOnlyList<NetAddress> addresses6)
    {
        var asm = Prologue();
        asm.JumpIfEqualImm(R5, AsRead16(EtherTypes.Arp), "arp");
        asm.JumpIfEqualImm(R5, AsRead16(EtherTypes.IPv4), "ipv4");
        if (addresses6.Count > 0)
        {
            asm.JumpIfEqualImm(R5, AsRead16(EtherTypes.IPv6), "ipv6");
        }
        asm.Jump("pass");

        asm.Label("arp");
        NeedBytes(asm, EthernetHeader.Size + 28);
        asm.Load(BpfAssembler.Size.Word, R5, R2, EthernetHeader.Size + 24); // target protocol address
        asm.JumpIfEqualImm(R5, AsRead32(address), "redirect");
        asm.Jump("pass");

        asm.Label("ipv4");
        NeedBytes(asm, EthernetHeader.Size + Ipv4Header.Size);
        asm.Load(BpfAssembler.Size.Word, R5, R2, EthernetHeader.Size + 16); // destination
        asm.JumpIfEqualImm(R5, AsRead32(address), "redirect");
        asm.Jump("pass");

        if (addresses6.Count > 0)
        {
            asm.Label("ipv6");
            NeedBytes(asm, EthernetHeader.Size + Ipv6Header.Size);
            Span<byte> bytes = stackalloc byte[16];
            Span<byte> group = stackalloc byte[16];
            for (int i = 0; i < addresses6.Count; i++)
            {
                // Each address, then ff02::1:ffXX:XXXX, the group a neighbour solicitation for it is sent to.
                string next = i + 1 < addresses6.Count ? $"ipv6 {i + 1}" : "pass";
                addresses6[i].WriteV6(bytes);
                JumpIfDestination6(asm, bytes, "redirect", $"solicited {i}");
                asm.Label($"solicited {i}");
                Ipv6Multicast.SolicitedNode(addresses6[i]).WriteV6(group);
                JumpIfDestination6(asm, group, "redirect", next);
                if (i + 1 < addresses6.Count)
                {
                    asm.Label(next);
                }
            }
        }
        return Epilogue(asm, socketsMap);
    }

    /// <summary>The program for the kernel's own address: only the ports in <paramref name="portsMap"/> are Norman's.</summary>
    public static ulong[] SharedAddress(int socketsMap, int portsMap, NetAddress address)
    {
        var asm = Prologue();
        asm.JumpIfNotEqualImm(R5, AsRead16(EtherTypes.IPv4), "pass");
        // Through the destination port of a header without options: 14 + 20 + 4 bytes.
        NeedBytes(asm, EthernetHeader.Size + Ipv4Header.Size + 4);
        asm.Load(BpfAssembler.Size.Word, R5, R2, EthernetHeader.Size + 16);
        asm.JumpIfNotEqualImm(R5, AsRead32(address), "pass");
        asm.Load(BpfAssembler.Size.Byte, R5, R2, EthernetHeader.Size);
        asm.JumpIfNotEqualImm(R5, 0x45, "pass"); // IPv4 without options; the rare rest is the kernel's
        asm.Load(BpfAssembler.Size.Half, R5, R2, EthernetHeader.Size + 6);
        asm.AndImm(R5, (int)AsRead16((ushort)(Ipv4Header.MoreFragmentsFlag | Ipv4Header.FragmentOffsetMask)));
        asm.JumpIfNotEqualImm(R5, 0, "pass"); // fragments: the kernel reassembles
        asm.Load(BpfAssembler.Size.Byte, R7, R2, EthernetHeader.Size + 9);
        asm.JumpIfEqualImm(R7, IpProtocols.Udp, "udp");
        asm.JumpIfEqualImm(R7, IpProtocols.Tcp, "tcp");
        asm.Jump("pass");
        asm.Label("udp");
        asm.MovImm(R7, (int)PortUdp);
        asm.Jump("port");
        asm.Label("tcp");
        asm.MovImm(R7, (int)PortTcp);
        asm.Label("port");
        asm.Load(BpfAssembler.Size.Half, R5, R2, EthernetHeader.Size + Ipv4Header.Size + 2);
        asm.FromNetworkOrder(R5, 16);
        asm.Store(BpfAssembler.Size.Word, R10, -4, R5);
        asm.LoadMap(R1, portsMap);
        asm.Mov(R2, R10);
        asm.AddImm(R2, -4);
        asm.CallHelper(HelperMapLookupElement);
        asm.JumpIfZero(R0, "pass");
        asm.Load(BpfAssembler.Size.Word, R0, R0, 0);
        asm.And(R0, R7);
        asm.JumpIfEqualImm(R0, 0, "pass");
        asm.Jump("redirect");
        return Epilogue(asm, socketsMap);
    }

    /// <summary>To <paramref name="match"/> when the IPv6 destination is <paramref name="address"/>, else to <paramref name="mismatch"/>.</summary>
    private static void JumpIfDestination6(BpfAssembler asm, ReadOnlySpan<byte> address, string match, string mismatch)
    {
        const short destination = EthernetHeader.Size + 24;
        asm.Load(BpfAssembler.Size.Double, R5, R2, destination);
        asm.LoadImm64(R4, BinaryPrimitives.ReadUInt64LittleEndian(address));
        asm.JumpIfNotEqual(R5, R4, mismatch);
        asm.Load(BpfAssembler.Size.Double, R5, R2, destination + 8);
        asm.LoadImm64(R4, BinaryPrimitives.ReadUInt64LittleEndian(address[8..]));
        asm.JumpIfEqual(R5, R4, match);
        asm.Jump(mismatch);
    }

    /// <summary>r6 = the context, r2 = data, r3 = data_end, r5 = the EtherType as read (a frame too short: pass).</summary>
    private static BpfAssembler Prologue()
    {
        var asm = new BpfAssembler();
        asm.Mov(R6, R1);
        asm.Load(BpfAssembler.Size.Word, R2, R1, MdData);
        asm.Load(BpfAssembler.Size.Word, R3, R1, MdDataEnd);
        NeedBytes(asm, EthernetHeader.Size);
        asm.Load(BpfAssembler.Size.Half, R5, R2, 12);
        return asm;
    }

    /// <summary>Passes the frame on unless <paramref name="bytes"/> of it are there (the verifier insists, and rightly).</summary>
    private static void NeedBytes(BpfAssembler asm, int bytes)
    {
        asm.Mov(R4, R2);
        asm.AddImm(R4, bytes);
        asm.JumpIfGreater(R4, R3, "pass");
    }

    private static ulong[] Epilogue(BpfAssembler asm, int socketsMap)
    {
        asm.Label("redirect");
        asm.Load(BpfAssembler.Size.Word, R2, R6, MdRxQueueIndex);
        asm.LoadMap(R1, socketsMap);
        asm.MovImm(R3, XdpPass); // a queue without a Norman socket: the kernel's
        asm.CallHelper(HelperRedirectMap);
        asm.Return();
        asm.Label("pass");
        asm.MovImm(R0, XdpPass);
        asm.Return();
        return asm.Assemble();
    }

    /// <summary>A 16-bit field in network order as a little-endian load reads it.</summary>
    private static uint AsRead16(ushort value) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(value) : value;

    /// <summary>An IPv4 address as a 32-bit load of its four bytes reads it.</summary>
    private static uint AsRead32(NetAddress address) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(address.V4) : address.V4;
}
