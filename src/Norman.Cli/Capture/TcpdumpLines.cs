using System.Globalization;
using System.Text;
using Norman.Core.Capture;
using Norman.Core.Packets;

namespace Norman.Cli.Capture;

/// <summary>
/// One line per packet in tcpdump's format (-n style addresses), followed by the owning application:
/// <c>12:00:01.123456 IP 198.18.0.2.40000 &gt; 198.18.0.1.6379: UDP, length 5 (app kvdb pid 42 uid 0)</c>.
/// -e adds the link-layer header; -A and -X add the payload as ASCII, or hex and ASCII.
/// </summary>
public sealed class TcpdumpLines(TextWriter output, bool linkLayer, bool ascii, bool hex) : ICaptureWriter
{
    public void Write(in CaptureRecord.Packet packet)
    {
        var time = DateTimeOffset.FromUnixTimeMilliseconds(packet.UnixNanoseconds / 1_000_000).ToLocalTime();
        var line = new StringBuilder();
        line.Append(CultureInfo.InvariantCulture, $"{time:HH:mm:ss}.{packet.UnixNanoseconds % 1_000_000_000 / 1000:D6} ");
        var frame = packet.Frame;
        if (linkLayer && frame.Length >= EthernetHeader.Size)
        {
            line.Append(CultureInfo.InvariantCulture, $"{EthernetHeader.Source(frame)} > {EthernetHeader.Destination(frame)}, length {packet.WireLength}: ");
        }
        line.Append(Describe(frame, packet.WireLength));
        line.Append(packet.Pid == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $" (app {packet.ProcessName} pid {packet.Pid} uid {packet.Uid})"));
        if (packet.Verdict != 0)
        {
            line.Append(" [").Append(packet.VerdictText).Append(']');
        }
        else if (DroppedBy.Of(packet) is { } reason)
        {
            line.Append(" [dropped: ").Append(reason).Append(']');
        }
        output.WriteLine(line.ToString());
        if ((ascii || hex) && PacketParser.Parse(frame, out var parsed) == ParseError.None)
        {
            var payload = frame.AsSpan(parsed.NetworkOffset, Math.Max(0, Math.Min(frame.Length, parsed.PacketEnd) - parsed.NetworkOffset));
            for (int offset = 0; offset < payload.Length; offset += 16)
            {
                var row = payload.Slice(offset, Math.Min(16, payload.Length - offset));
                string text = new(row.ToArray().Select(b => b is >= 32 and < 127 ? (char)b : '.').ToArray());
                output.WriteLine(hex
                    ? string.Create(CultureInfo.InvariantCulture, $"\t0x{offset:x4}:  {Convert.ToHexString(row).ToLowerInvariant(),-32}  {text}")
                    : text);
            }
        }
    }

    public void Finish() => output.Flush();

    private static string Describe(byte[] frame, int wireLength)
    {
        var error = PacketParser.Parse(frame, out var packet);
        if (error != ParseError.None)
        {
            return $"[|{error}] length {wireLength}";
        }
        if (packet.Kind == PacketKind.Arp)
        {
            var arp = frame.AsSpan(packet.NetworkOffset);
            bool request = (arp[6] << 8 | arp[7]) == ArpPacket.Request;
            return request
                ? $"ARP, Request who-has {ArpPacket.TargetIp(arp)} tell {ArpPacket.SenderIp(arp)}, length {ArpPacket.Size}"
                : $"ARP, Reply {ArpPacket.SenderIp(arp)} is-at {ArpPacket.SenderMac(arp)}, length {ArpPacket.Size}";
        }
        string family = packet.IpVersion == 6 ? "IP6" : "IP";
        return packet.Kind switch
        {
            PacketKind.Udp => $"{family} {packet.Source}.{packet.SourcePort} > {packet.Destination}.{packet.DestinationPort}: UDP, length {packet.PayloadLength}",
            PacketKind.Tcp => $"{family} {packet.Source}.{packet.SourcePort} > {packet.Destination}.{packet.DestinationPort}: Flags [{TcpFlags(packet.TcpFlags)}], length {packet.PayloadLength}",
            PacketKind.Icmp => $"{family} {packet.Source} > {packet.Destination}: ICMP {IcmpName(packet.IcmpType)}, length {packet.PacketEnd - packet.TransportOffset}",
            PacketKind.IcmpV6 => $"{family} {packet.Source} > {packet.Destination}: ICMP6, type {packet.IcmpType}, length {packet.PacketEnd - packet.TransportOffset}",
            _ => $"{family} {packet.Source} > {packet.Destination}: ip-proto-{packet.Protocol} {packet.PacketEnd - packet.TransportOffset}",
        };
    }

    private static string IcmpName(byte type) => type switch
    {
        0 => "echo reply",
        3 => "unreachable",
        8 => "echo request",
        11 => "time exceeded",
        _ => $"type {type}",
    };

    private static string TcpFlags(byte flags)
    {
        var text = new StringBuilder();
        if ((flags & TcpHeader.Syn) != 0) { text.Append('S'); }
        if ((flags & TcpHeader.Fin) != 0) { text.Append('F'); }
        if ((flags & TcpHeader.Rst) != 0) { text.Append('R'); }
        if ((flags & TcpHeader.Psh) != 0) { text.Append('P'); }
        if ((flags & TcpHeader.Ack) != 0) { text.Append('.'); }
        return text.Length == 0 ? "none" : text.ToString();
    }
}
