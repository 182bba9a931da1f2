using System.Buffers.Binary;
using System.Text;
using Norman.Core.Capture;

namespace Norman.Cli.Capture;

/// <summary>
/// Writes pcapng: a section header, one Ethernet interface (nanosecond timestamps), and an enhanced packet block
/// per packet whose comment names the owning application (app=NAME pid=N uid=N) and whose flags give the
/// direction, so Wireshark and tshark show who sent or received every packet.
/// </summary>
public sealed class PcapngWriter(Stream output, int snapLength) : ICaptureWriter
{
    private bool _headersWritten;

    public void Write(in CaptureRecord.Packet packet)
    {
        WriteHeaders();
        string owner = packet.Pid == 0 ? "no socket (host traffic)" : $"app={packet.ProcessName} pid={packet.Pid} uid={packet.Uid}";
        byte[] comment = Encoding.UTF8.GetBytes(packet.Verdict != 0 ? $"{owner} verdict={(packet.Verdict == 2 ? "reject" : "drop")} rule={packet.Rule}"
            : DroppedBy.Of(packet) is { } reason ? $"{owner} dropped={reason}"
            : owner);
        int dataPadded = Pad4(packet.Frame.Length);
        int optionsLength = 4 + Pad4(comment.Length) + 4 + 4 + 4; // comment, epb_flags, end of options
        int total = 28 + dataPadded + optionsLength + 4;
        var block = new byte[total];
        BinaryPrimitives.WriteUInt32LittleEndian(block, 0x00000006);
        BinaryPrimitives.WriteInt32LittleEndian(block.AsSpan(4), total);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(8), 0); // interface 0
        ulong timestamp = (ulong)packet.UnixNanoseconds;
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(12), (uint)(timestamp >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(16), (uint)timestamp);
        BinaryPrimitives.WriteInt32LittleEndian(block.AsSpan(20), packet.Frame.Length);
        BinaryPrimitives.WriteInt32LittleEndian(block.AsSpan(24), packet.WireLength);
        packet.Frame.CopyTo(block, 28);
        int at = 28 + dataPadded;
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(at), 1); // opt_comment
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(at + 2), (ushort)comment.Length);
        comment.CopyTo(block, at + 4);
        at += 4 + Pad4(comment.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(at), 2); // epb_flags
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(at + 2), 4);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(at + 4), packet.Direction == CaptureRecord.Inbound ? 1u : 2u);
        at += 8;
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(at), 0); // opt_endofopt
        BinaryPrimitives.WriteInt32LittleEndian(block.AsSpan(total - 4), total);
        output.Write(block);
    }

    public void Finish()
    {
        WriteHeaders();
        output.Flush();
    }

    private void WriteHeaders()
    {
        if (_headersWritten)
        {
            return;
        }
        _headersWritten = true;
        Span<byte> section = stackalloc byte[28];
        BinaryPrimitives.WriteUInt32LittleEndian(section, 0x0A0D0D0A);
        BinaryPrimitives.WriteInt32LittleEndian(section[4..], 28);
        BinaryPrimitives.WriteUInt32LittleEndian(section[8..], 0x1A2B3C4D);
        BinaryPrimitives.WriteUInt16LittleEndian(section[12..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(section[14..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(section[16..], -1);
        BinaryPrimitives.WriteInt32LittleEndian(section[24..], 28);
        output.Write(section);
        // Interface description: Ethernet, the snap length, if_tsresol = 9 (nanoseconds).
        Span<byte> iface = stackalloc byte[32];
        BinaryPrimitives.WriteUInt32LittleEndian(iface, 0x00000001);
        BinaryPrimitives.WriteInt32LittleEndian(iface[4..], 32);
        BinaryPrimitives.WriteUInt16LittleEndian(iface[8..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(iface[10..], 0);
        BinaryPrimitives.WriteInt32LittleEndian(iface[12..], snapLength);
        BinaryPrimitives.WriteUInt16LittleEndian(iface[16..], 9);
        BinaryPrimitives.WriteUInt16LittleEndian(iface[18..], 1);
        iface[20] = 9;
        iface[21] = iface[22] = iface[23] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(iface[24..], 0);
        BinaryPrimitives.WriteInt32LittleEndian(iface[28..], 32);
        output.Write(iface);
    }

    private static int Pad4(int length) => (length + 3) & ~3;
}
