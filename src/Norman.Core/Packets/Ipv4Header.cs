using System.Runtime.InteropServices;

namespace Norman.Core.Packets;

/// <summary>
/// An IPv4 header (RFC 791); options, when IHL &gt; 5, follow the 20 fixed bytes.
/// <code>
///  0         1       2            4       6            8    9      10        12    16    20
///  | ver/ihl | tos   | total len  | id    | flags/frag | ttl| proto| checksum| src | dst |
/// </code>
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct Ipv4Header
{
    public const int Size = 20;
    public const ushort MoreFragmentsFlag = 0x2000;
    public const ushort DontFragmentFlag = 0x4000;
    public const ushort FragmentOffsetMask = 0x1FFF;

    [FieldOffset(0)] private byte _versionAndIhl;
    [FieldOffset(1)] private byte _typeOfService;
    [FieldOffset(2)] private ushort _totalLength;
    [FieldOffset(4)] private ushort _identification;
    [FieldOffset(6)] private ushort _flagsAndFragment;
    [FieldOffset(8)] private byte _timeToLive;
    [FieldOffset(9)] private byte _protocol;
    [FieldOffset(10)] private ushort _checksum;
    [FieldOffset(12)] private uint _source;
    [FieldOffset(16)] private uint _destination;

    public readonly int Version => _versionAndIhl >> 4;
    public readonly int HeaderLength => (_versionAndIhl & 0x0F) * 4;
    public byte TypeOfService { readonly get => _typeOfService; set => _typeOfService = value; }
    public ushort TotalLength { readonly get => NetworkOrder.Swap(_totalLength); set => _totalLength = NetworkOrder.Swap(value); }
    public ushort Identification { readonly get => NetworkOrder.Swap(_identification); set => _identification = NetworkOrder.Swap(value); }
    public ushort FlagsAndFragment { readonly get => NetworkOrder.Swap(_flagsAndFragment); set => _flagsAndFragment = NetworkOrder.Swap(value); }
    public readonly bool IsFragment => (FlagsAndFragment & (MoreFragmentsFlag | FragmentOffsetMask)) != 0;
    public readonly int FragmentOffset => (FlagsAndFragment & FragmentOffsetMask) * 8;
    public byte TimeToLive { readonly get => _timeToLive; set => _timeToLive = value; }
    public byte Protocol { readonly get => _protocol; set => _protocol = value; }
    public ushort Checksum { readonly get => NetworkOrder.Swap(_checksum); set => _checksum = NetworkOrder.Swap(value); }
    public uint Source { readonly get => NetworkOrder.Swap(_source); set => _source = NetworkOrder.Swap(value); }
    public uint Destination { readonly get => NetworkOrder.Swap(_destination); set => _destination = NetworkOrder.Swap(value); }

    public static ref Ipv4Header At(Span<byte> packet) => ref MemoryMarshal.AsRef<Ipv4Header>(packet);
    public static ref readonly Ipv4Header At(ReadOnlySpan<byte> packet) => ref MemoryMarshal.AsRef<Ipv4Header>(packet);

    /// <summary>Writes a 20-byte header with no options and its checksum.</summary>
    public static void Write(Span<byte> packet, byte protocol, uint source, uint destination, int totalLength, ushort identification, byte ttl = 64, byte tos = 0)
    {
        ref var header = ref At(packet);
        header._versionAndIhl = 0x45;
        header._typeOfService = tos;
        header.TotalLength = (ushort)totalLength;
        header.Identification = identification;
        header.FlagsAndFragment = DontFragmentFlag;
        header._timeToLive = ttl;
        header._protocol = protocol;
        header._checksum = 0;
        header.Source = source;
        header.Destination = destination;
        header.Checksum = InternetChecksum.Compute(packet[..Size]);
    }
}

/// <summary>IP protocol numbers (the IPv4 protocol field and the IPv6 next header).</summary>
public static class IpProtocols
{
    public const byte HopByHop = 0;
    public const byte Icmp = 1;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Routing = 43;
    public const byte Fragment = 44;
    public const byte Esp = 50;
    public const byte Ah = 51;
    public const byte IcmpV6 = 58;
    public const byte NoNextHeader = 59;
    public const byte DestinationOptions = 60;
    public const byte Mobility = 135;

    public static string Name(byte protocol) => protocol switch
    {
        Icmp => "icmp",
        Tcp => "tcp",
        Udp => "udp",
        IcmpV6 => "icmp6",
        _ => protocol.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
