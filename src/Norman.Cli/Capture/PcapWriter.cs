using System.Buffers.Binary;
using Norman.Core.Capture;

namespace Norman.Cli.Capture;

/// <summary>Writes the classic pcap format (microsecond timestamps, Ethernet), which tcpdump and Wireshark read.</summary>
public sealed class PcapWriter(Stream output, int snapLength) : ICaptureWriter
{
    private bool _headerWritten;

    public void Write(in CaptureRecord.Packet packet)
    {
        WriteHeader();
        Span<byte> record = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)(packet.UnixNanoseconds / 1_000_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], (uint)(packet.UnixNanoseconds % 1_000_000_000 / 1000));
        BinaryPrimitives.WriteInt32LittleEndian(record[8..], packet.Frame.Length);
        BinaryPrimitives.WriteInt32LittleEndian(record[12..], packet.WireLength);
        output.Write(record);
        output.Write(packet.Frame);
    }

    /// <summary>A capture that saw nothing still leaves a valid, empty file.</summary>
    public void Finish()
    {
        WriteHeader();
        output.Flush();
    }

    private void WriteHeader()
    {
        if (_headerWritten)
        {
            return;
        }
        _headerWritten = true;
        Span<byte> header = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0xA1B2C3D4);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0);
        BinaryPrimitives.WriteInt32LittleEndian(header[16..], snapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], 1); // LINKTYPE_ETHERNET
        output.Write(header);
    }
}
