using System.Text.Json;
using Norman.Core.Packets;

namespace Norman.Core.Tests.Packets;

public class PacketParserTests
{
    public static TheoryData<string> Vectors => ScapyVectors.Names("vectors");
    public static TheoryData<string> Malformed => ScapyVectors.Names("malformed");

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Parses_what_scapy_built_to_the_fields_scapy_put_there(string name)
    {
        var vector = ScapyVectors.Get("vectors", name);
        var frame = ScapyVectors.Frame(vector);

        Assert.Equal(ParseError.None, PacketParser.Parse(frame, out var packet));

        foreach (var field in vector.GetProperty("expect").EnumerateObject())
        {
            var value = field.Value;
            switch (field.Name)
            {
                case "kind": Assert.Equal(value.GetString(), packet.Kind.ToString()); break;
                case "ipVersion": Assert.Equal(value.GetInt32(), packet.IpVersion); break;
                case "protocol": Assert.Equal(value.GetInt32(), packet.Protocol); break;
                case "src": Assert.Equal(NetAddress.Parse(value.GetString()!), packet.Source); break;
                case "dst": Assert.Equal(NetAddress.Parse(value.GetString()!), packet.Destination); break;
                case "sport": Assert.Equal(value.GetInt32(), packet.SourcePort); break;
                case "dport": Assert.Equal(value.GetInt32(), packet.DestinationPort); break;
                case "vlanCount": Assert.Equal(value.GetInt32(), packet.VlanCount); break;
                case "vlanId": Assert.Equal(value.GetInt32(), packet.VlanId); break;
                case "tcpFlags": Assert.Equal(value.GetInt32(), packet.TcpFlags); break;
                case "icmpType": Assert.Equal(value.GetInt32(), packet.IcmpType); break;
                case "icmpCode": Assert.Equal(value.GetInt32(), packet.IcmpCode); break;
                case "fragment": Assert.Equal(value.GetBoolean(), packet.IsFragment); break;
                case "laterFragment": Assert.Equal(value.GetBoolean(), packet.IsLaterFragment); break;
                case "payload":
                    Assert.Equal(value.GetString(), Convert.ToHexString(frame.AsSpan(packet.PayloadOffset, packet.PayloadLength)).ToLowerInvariant());
                    break;
                default: throw new InvalidOperationException($"vector field {field.Name} has no check");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Reports_what_is_wrong_with_a_malformed_frame(string name)
    {
        var vector = ScapyVectors.Get("malformed", name);
        var expected = Enum.Parse<ParseError>(vector.GetProperty("error").GetString()!);

        Assert.Equal(expected, PacketParser.Parse(ScapyVectors.Frame(vector), out _));
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Every_truncation_of_a_valid_frame_fails_cleanly_or_parses_within_bounds(string name)
    {
        var frame = ScapyVectors.Frame(ScapyVectors.Get("vectors", name));
        for (int length = 0; length < frame.Length; length++)
        {
            var cut = frame.AsSpan(0, length);
            if (PacketParser.Parse(cut, out var packet) == ParseError.None)
            {
                Assert.InRange(packet.PacketEnd, packet.PayloadOffset, length);
            }
        }
    }

    [Fact]
    public void Random_bytes_never_parse_to_offsets_outside_the_frame()
    {
        var random = new Random(1234);
        var frame = new byte[128];
        for (int i = 0; i < 200_000; i++)
        {
            random.NextBytes(frame);
            int length = random.Next(frame.Length + 1);
            // Bias towards IPv4 and IPv6 so the deeper layers are exercised too.
            if (length >= 14 && i % 2 == 0)
            {
                frame[12] = i % 4 == 0 ? (byte)0x08 : (byte)0x86;
                frame[13] = i % 4 == 0 ? (byte)0x00 : (byte)0xDD;
                frame[14] = i % 4 == 0 ? (byte)0x45 : (byte)0x60;
            }
            if (PacketParser.Parse(frame.AsSpan(0, length), out var packet) == ParseError.None && packet.Kind != PacketKind.Arp)
            {
                Assert.InRange(packet.PacketEnd, packet.PayloadOffset, length);
                Assert.InRange(packet.TransportOffset, packet.NetworkOffset, packet.PayloadOffset);
            }
        }
    }
}
