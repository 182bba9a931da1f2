using System.Buffers.Binary;
using Norman.Core.Packets;

namespace Norman.Daemon.Tests.Policy;

/// <summary>
/// A few thousand varied Ethernet frames, the same every run: ARP, IPv4 and IPv6 with UDP, TCP (every flag mix),
/// ICMP, VLAN-tagged frames, odd TTLs and lengths, IPv4 options, fragments, frames captured short of their
/// wire length, and random bytes. Filters are judged on all of them.
/// </summary>
public static class FrameCorpus
{
    public sealed record Frame(byte[] Bytes, int WireLength);

    private static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:00:01");
    private static readonly MacAddress MacB = MacAddress.Parse("02:00:00:00:00:02");
    private static readonly string[] V4 = ["198.18.0.1", "198.18.0.2", "198.18.7.9", "10.1.2.3", "192.0.2.77"];
    private static readonly string[] V6 = ["2001:db8::1", "2001:db8::2", "2001:db8:5::9"];
    private static readonly ushort[] Ports = [53, 80, 443, 1000, 1500, 2000, 5000, 5353, 6000, 40000];

    public static IReadOnlyList<Frame> Build(int count = 3000)
    {
        var random = new Random(20261122);
        var frames = new List<Frame>(count);
        while (frames.Count < count)
        {
            var frame = random.Next(12) switch
            {
                0 => Arp(random),
                1 or 2 or 3 => Ipv4(random, IpProtocols.Udp),
                4 or 5 => Ipv4(random, IpProtocols.Tcp),
                6 => Ipv4(random, IpProtocols.Icmp),
                7 => Ipv6(random, random.Next(3) switch { 0 => IpProtocols.Udp, 1 => IpProtocols.Tcp, _ => IpProtocols.IcmpV6 }),
                8 => Vlan(random),
                9 => Garbage(random),
                _ => Ipv4(random, random.Next(2) == 0 ? IpProtocols.Udp : IpProtocols.Tcp),
            };
            frames.Add(random.Next(10) == 0 ? Truncated(frame, random) : frame);
        }
        return frames;
    }

    private static Frame Arp(Random random)
    {
        var bytes = new byte[ControlFrames.MinimumFrameLength];
        ControlFrames.ArpRequest(bytes, MacA, NetAddress.Parse(Pick(random, V4)), NetAddress.Parse(Pick(random, V4)));
        return new Frame(bytes, bytes.Length);
    }

    private static Frame Ipv4(Random random, byte protocol, int vlanBytes = 0)
    {
        int options = random.Next(5) == 0 ? 4 * random.Next(1, 4) : 0;
        int payload = random.Next(6) == 0 ? random.Next(1000, 1400) : random.Next(0, 64);
        int transport = protocol switch { IpProtocols.Tcp => TcpHeader.Size, _ => 8 };
        int ipLength = Ipv4Header.Size + options + transport + payload;
        var bytes = new byte[Math.Max(EthernetHeader.Size + vlanBytes + ipLength, 60)];
        random.NextBytes(bytes);
        EthernetHeader.Write(bytes, random.Next(8) == 0 ? MacAddress.Broadcast : MacB, MacA, EtherTypes.IPv4);
        var ip = bytes.AsSpan(EthernetHeader.Size + vlanBytes);
        Ipv4Header.Write(ip, protocol, NetAddress.Parse(Pick(random, V4)).V4, NetAddress.Parse(Pick(random, V4)).V4, ipLength,
            (ushort)random.Next(), (byte)random.Next(1, 256));
        ip[0] = (byte)(0x40 | ((Ipv4Header.Size + options) / 4));
        if (random.Next(8) == 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[6..], (ushort)(random.Next(2) == 0 ? 0x2000 : 0x0010 + random.Next(100)));
        }
        var segment = ip[(Ipv4Header.Size + options)..];
        WriteTransport(segment, protocol, random, transport + payload);
        return new Frame(bytes, bytes.Length);
    }

    private static Frame Ipv6(Random random, byte protocol)
    {
        int transport = protocol == IpProtocols.Tcp ? TcpHeader.Size : 8;
        int payload = random.Next(0, 200);
        var bytes = new byte[EthernetHeader.Size + Ipv6Header.Size + transport + payload];
        random.NextBytes(bytes);
        EthernetHeader.Write(bytes, MacB, MacA, EtherTypes.IPv6);
        var ip = bytes.AsSpan(EthernetHeader.Size);
        Ipv6Header.Write(ip, protocol, NetAddress.Parse(Pick(random, V6)), NetAddress.Parse(Pick(random, V6)), transport + payload,
            (byte)random.Next(1, 256));
        WriteTransport(ip[Ipv6Header.Size..], protocol, random, transport + payload);
        return new Frame(bytes, bytes.Length);
    }

    private static Frame Vlan(Random random)
    {
        var inner = Ipv4(random, random.Next(2) == 0 ? IpProtocols.Udp : IpProtocols.Tcp, vlanBytes: VlanTag.Size);
        var bytes = inner.Bytes;
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(12), EtherTypes.Vlan);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(14), (ushort)(random.Next(3) == 0 ? 42 : random.Next(1, 4095)));
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(16), EtherTypes.IPv4);
        return inner;
    }

    private static void WriteTransport(Span<byte> segment, byte protocol, Random random, int length)
    {
        switch (protocol)
        {
            case IpProtocols.Udp:
                BinaryPrimitives.WriteUInt16BigEndian(segment, Pick(random, Ports));
                BinaryPrimitives.WriteUInt16BigEndian(segment[2..], Pick(random, Ports));
                BinaryPrimitives.WriteUInt16BigEndian(segment[4..], (ushort)length);
                break;
            case IpProtocols.Tcp:
                BinaryPrimitives.WriteUInt16BigEndian(segment, Pick(random, Ports));
                BinaryPrimitives.WriteUInt16BigEndian(segment[2..], Pick(random, Ports));
                segment[12] = 0x50;
                segment[13] = (byte)random.Next(64);
                break;
            default:
                segment[0] = (byte)(random.Next(3) switch { 0 => 8, 1 => 0, _ => random.Next(256) });
                segment[1] = 0;
                break;
        }
    }

    private static Frame Garbage(Random random)
    {
        var bytes = new byte[random.Next(1, 200)];
        random.NextBytes(bytes);
        if (bytes.Length > 14 && random.Next(2) == 0)
        {
            bytes[12] = 0x08;
            bytes[13] = 0x00;
        }
        return new Frame(bytes, bytes.Length);
    }

    /// <summary>Captured short of its wire length, as a snap length does.</summary>
    private static Frame Truncated(Frame frame, Random random)
    {
        int captured = random.Next(1, frame.Bytes.Length + 1);
        return new Frame(frame.Bytes[..captured], frame.WireLength);
    }

    private static T Pick<T>(Random random, T[] values) => values[random.Next(values.Length)];
}
