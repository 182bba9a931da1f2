using System.Buffers.Binary;

namespace Norman.Core.Packets;

/// <summary>What a TCP segment says besides its payload: the fields a stack sets on every segment it sends.</summary>
public readonly record struct TcpSegmentFields(uint Sequence, uint Acknowledgement, byte Flags, ushort Window)
{
    /// <summary>
    /// The reset that answers a segment no connection owns, as RFC 9293 §3.10.7.1 has a closed port answer: the
    /// segment's ACK number as its sequence number when it had ACK, else RST+ACK acknowledging all it occupied.
    /// </summary>
    public static TcpSegmentFields ResetFor(uint sequence, uint acknowledgement, byte flags, int payloadLength)
    {
        if ((flags & TcpHeader.Ack) != 0)
        {
            return new TcpSegmentFields(acknowledgement, 0, TcpHeader.Rst, 0);
        }
        uint occupied = (uint)payloadLength + ((flags & TcpHeader.Syn) != 0 ? 1u : 0) + ((flags & TcpHeader.Fin) != 0 ? 1u : 0);
        return new TcpSegmentFields(0, sequence + occupied, TcpHeader.Rst | TcpHeader.Ack, 0);
    }
}

/// <summary>
/// Writes IPv4 + TCP headers in front of a payload already in place (at <see cref="HeaderLength"/> plus the options'
/// length), with both checksums, as the client library's TCP stack sends them and the tests forge them.
/// </summary>
public static class TcpSegmentBuilder
{
    public const int HeaderLength = Ipv4Header.Size + TcpHeader.Size;
    /// <summary>The same over IPv6, whose header is 20 bytes longer.</summary>
    public const int HeaderLengthV6 = Ipv6Header.Size + TcpHeader.Size;

    /// <summary>The MSS option (kind 2) and window scale option (kind 3, after a NOP), as a SYN carries them: 8 bytes.</summary>
    public static int WriteSynOptions(Span<byte> options, ushort mss, byte windowScale)
    {
        options[0] = 2;
        options[1] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(options[2..], mss);
        options[4] = 1;
        options[5] = 3;
        options[6] = 3;
        options[7] = windowScale;
        return 8;
    }

    /// <summary>
    /// Writes the headers of a segment whose <paramref name="payloadLength"/> bytes follow the
    /// <paramref name="options"/>; returns the IP packet's length. Options must be a multiple of 4 bytes. IPv6 when the
    /// addresses are (a reset answering an IPv6 segment), the payload then starting 20 bytes further on.
    /// </summary>
    public static int Write(Span<byte> packet, NetAddress source, ushort sourcePort, NetAddress destination, ushort destinationPort,
        TcpSegmentFields fields, ReadOnlySpan<byte> options, int payloadLength, ushort identification = 0)
    {
        int tcpLength = TcpHeader.Size + options.Length + payloadLength;
        int ipHeader = source.IsV4 ? Ipv4Header.Size : Ipv6Header.Size;
        if (source.IsV4)
        {
            Ipv4Header.Write(packet, IpProtocols.Tcp, source.V4, destination.V4, Ipv4Header.Size + tcpLength, identification);
        }
        else
        {
            Ipv6Header.Write(packet, IpProtocols.Tcp, source, destination, tcpLength);
        }
        var tcp = packet.Slice(ipHeader, tcpLength);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], fields.Sequence);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], fields.Acknowledgement);
        tcp[12] = (byte)((TcpHeader.Size + options.Length) / 4 << 4);
        tcp[13] = fields.Flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], fields.Window);
        tcp[16] = tcp[17] = 0;
        tcp[18] = tcp[19] = 0;
        options.CopyTo(tcp[TcpHeader.Size..]);
        ulong pseudoHeader = source.IsV4
            ? InternetChecksum.PseudoHeaderV4(source.V4, destination.V4, IpProtocols.Tcp, tcpLength)
            : InternetChecksum.PseudoHeaderV6(source, destination, IpProtocols.Tcp, tcpLength);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], InternetChecksum.Transport(pseudoHeader, tcp, IpProtocols.Tcp));
        return ipHeader + tcpLength;
    }
}
