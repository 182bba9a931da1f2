using System.Buffers.Binary;
using Norman.Core.Packets;

namespace Norman.Core.Tests.Packets;

public class ChecksumTests
{
    [Theory]
    [InlineData("udp4")]
    [InlineData("udp4-options")]
    [InlineData("udp6")]
    [InlineData("tcp4-psh-ack")]
    [InlineData("tcp6")]
    [InlineData("icmp4-echo")]
    [InlineData("icmp6-echo")]
    public void Recomputes_scapys_transport_checksum(string name)
    {
        var frame = ScapyVectors.Frame(ScapyVectors.Get("vectors", name));
        Assert.Equal(ParseError.None, PacketParser.Parse(frame, out var packet));
        int checksumOffset = packet.TransportOffset + packet.Protocol switch
        {
            IpProtocols.Udp => 6,
            IpProtocols.Tcp => 16,
            _ => 2,
        };
        ushort scapys = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(checksumOffset));
        frame[checksumOffset] = 0;
        frame[checksumOffset + 1] = 0;
        var segment = frame.AsSpan(packet.TransportOffset, packet.PacketEnd - packet.TransportOffset);
        ulong pseudo = packet.Protocol == IpProtocols.Icmp ? 0
            : packet.IpVersion == 4 ? InternetChecksum.PseudoHeaderV4(packet.Source.V4, packet.Destination.V4, packet.Protocol, segment.Length)
            : InternetChecksum.PseudoHeaderV6(packet.Source, packet.Destination, packet.Protocol, segment.Length);

        Assert.Equal(scapys, InternetChecksum.Transport(pseudo, segment, packet.Protocol));
    }

    [Fact]
    public void A_scapy_ipv4_header_checks_out_and_a_flipped_bit_does_not()
    {
        var frame = ScapyVectors.Frame(ScapyVectors.Get("vectors", "udp4"));
        Assert.True(InternetChecksum.IsValid(frame.AsSpan(14, 20)));
        frame[20] ^= 0x10;
        Assert.False(InternetChecksum.IsValid(frame.AsSpan(14, 20)));
    }

    [Fact]
    public void Odd_lengths_are_padded_with_a_zero_byte()
    {
        // RFC 1071's example words 0x0001 0xf203 0xf4f5 0xf6f7 sum to 0xddf2 (folded); its complement is 0x220d.
        byte[] data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        Assert.Equal(0x220d, InternetChecksum.Compute(data));
        byte[] odd = [0x00, 0x01, 0xf2];
        Assert.Equal(unchecked((ushort)~(0x0001 + 0xf200)), InternetChecksum.Compute(odd));
    }

    [Fact]
    public void A_datagram_built_by_Norman_parses_back_with_valid_checksums()
    {
        var packet = new byte[UdpPacketBuilder.HeaderLengthV4 + 5];
        "hello"u8.CopyTo(packet.AsSpan(UdpPacketBuilder.HeaderLengthV4));
        int length = UdpPacketBuilder.WriteHeaders(packet, NetAddress.Parse("198.18.0.1"), 5000, NetAddress.Parse("198.18.0.2"), 6000, 5, 7);
        var frame = new byte[14 + length];
        frame[12] = 0x08;
        packet.CopyTo(frame, 14);

        Assert.Equal(ParseError.None, PacketParser.Parse(frame, out var parsed));
        Assert.True(InternetChecksum.IsValidTransport(frame, parsed));
        frame[^1] ^= 1;
        Assert.False(InternetChecksum.IsValidTransport(frame, parsed));
    }

    [Fact]
    public void A_tcp_segment_built_by_Norman_parses_back_with_valid_checksums()
    {
        var frame = new byte[14 + TcpSegmentBuilder.HeaderLength + 8 + 5];
        frame[12] = 0x08;
        "hello"u8.CopyTo(frame.AsSpan(14 + TcpSegmentBuilder.HeaderLength + 8));
        Span<byte> options = stackalloc byte[8];
        TcpSegmentBuilder.WriteSynOptions(options, 1460, 7);
        TcpSegmentBuilder.Write(frame.AsSpan(14), NetAddress.Parse("198.18.0.1"), 5000, NetAddress.Parse("198.18.0.2"), 80,
            new TcpSegmentFields(1, 2, TcpHeader.Syn, 65535), options, 5);

        Assert.Equal(ParseError.None, PacketParser.Parse(frame, out var parsed));
        Assert.True(InternetChecksum.IsValidTransport(frame, parsed));
        frame[^1] ^= 1;
        Assert.False(InternetChecksum.IsValidTransport(frame, parsed));
    }

    /// <summary>RFC 1624's incremental update agrees with summing again, over random headers and words changed anywhere.</summary>
    [Fact]
    public void An_adjusted_checksum_equals_the_one_computed_again()
    {
        var random = new Random(1624);
        var header = new byte[20];
        for (int round = 0; round < 10_000; round++)
        {
            random.NextBytes(header);
            header[10] = header[11] = 0;
            ushort checksum = InternetChecksum.Compute(header);
            int word = random.Next(10) * 2;
            if (word == 10)
            {
                continue; // the checksum field itself
            }
            ushort oldWord = (ushort)((header[word] << 8) | header[word + 1]);
            ushort newWord = (ushort)random.Next(65536);
            header[word] = (byte)(newWord >> 8);
            header[word + 1] = (byte)newWord;
            ushort adjusted = InternetChecksum.Adjust(checksum, oldWord, newWord);
            header[10] = (byte)(adjusted >> 8);
            header[11] = (byte)adjusted;
            Assert.True(InternetChecksum.IsValid(header), $"round {round}: {oldWord:x4} → {newWord:x4} at {word}");
        }
    }
}
