using System.Globalization;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// `norman trace`: builds the packet an administrator describes — <c>udp saddr 198.18.0.2 sport 40000 dport 80</c> —
/// and walks a chain of the policy in force over it, rule by rule, saying which matched and what decided, as
/// `nft monitor trace` does for live packets. Counters and rate limits are left untouched.
/// </summary>
public static class PacketTrace
{
    public sealed record Step(long Handle, string Rule, bool Matched, string Note);

    public sealed record Result(string Packet, string Owner, IReadOnlyList<Step> Steps, string Verdict);

    /// <summary>Builds the described packet; addresses default to the peer side and this host.</summary>
    /// <summary>The largest packet a trace describes: the MTU's.</summary>
    public const int MaxTracedIpLength = 1500;

    public static (byte[] Frame, ParsedPacket Packet) Build(Chain chain, IReadOnlyList<string> words, NetAddress hostAddress)
    {
        byte protocol = IpProtocols.Udp;
        NetAddress? source = null, destination = null;
        ushort sourcePort = 40000, destinationPort = 0;
        int payload = 0;
        for (int i = 0; i < words.Count; i++)
        {
            string Next() => ++i < words.Count ? words[i] : throw new FormatException($"The packet description ends after '{words[i - 1]}'.");
            switch (words[i])
            {
                case "udp": protocol = IpProtocols.Udp; break;
                case "tcp": protocol = IpProtocols.Tcp; break;
                case "saddr": source = NetAddress.Parse(Next()); break;
                case "daddr": destination = NetAddress.Parse(Next()); break;
                case "sport": sourcePort = Port(Next()); break;
                case "dport": destinationPort = Port(Next()); break;
                case "payload": payload = Payload(Next()); break;
                default:
                    throw new FormatException($"'{words[i]}' does not describe a packet: use udp|tcp, saddr, daddr, sport, dport, payload BYTES.");
            }
        }
        // As on the wire: the dataplane carries no fragments, so no packet is larger than the MTU.
        int maxPayload = MaxTracedIpLength - (protocol == IpProtocols.Udp ? UdpPacketBuilder.HeaderLengthV4 : Ipv4Header.Size + TcpHeader.Size);
        if (payload > maxPayload)
        {
            throw new FormatException($"A payload of {payload} bytes does not fit one {MaxTracedIpLength}-byte IPv4 {IpProtocols.Name(protocol)} packet: use 0 to {maxPayload}.");
        }
        var remote = NetAddress.Parse("198.18.0.2");
        var src = source ?? (chain == Chain.Ingress ? remote : hostAddress);
        var dst = destination ?? (chain == Chain.Ingress ? hostAddress : remote);
        var frame = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + TcpHeader.Size + payload];
        frame[12] = 0x08;
        int length;
        if (protocol == IpProtocols.Udp)
        {
            length = UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), src, sourcePort, dst, destinationPort, payload);
        }
        else
        {
            length = Ipv4Header.Size + TcpHeader.Size + payload;
            Ipv4Header.Write(frame.AsSpan(EthernetHeader.Size), IpProtocols.Tcp, src.V4, dst.V4, length, 0);
            var tcp = frame.AsSpan(EthernetHeader.Size + Ipv4Header.Size);
            tcp[0] = (byte)(sourcePort >> 8);
            tcp[1] = (byte)sourcePort;
            tcp[2] = (byte)(destinationPort >> 8);
            tcp[3] = (byte)destinationPort;
            tcp[12] = 0x50;
            tcp[13] = TcpHeader.Syn;
        }
        frame = frame[..(EthernetHeader.Size + length)];
        if (PacketParser.Parse(frame, out var packet) != ParseError.None)
        {
            throw new FormatException("The described packet does not parse.");
        }
        return (frame, packet);
    }

    public static Result Run(PolicySnapshot policy, Chain chain, byte[] frame, in ParsedPacket packet, PipeSocket? socket, string owner)
    {
        var steps = new List<Step>();
        string verdict = $"policy {(chain == Chain.Ingress ? policy.IngressPolicy : policy.EgressPolicy).ToString().ToLowerInvariant()}";
        foreach (var rule in policy.Rules(chain))
        {
            if (rule.Rule.LimitRate > 0 || rule.Rule.CtStates != ConnectionState.None)
            {
                steps.Add(new Step(rule.Rule.Handle, rule.Rule.ToString(), false, "not traced: it depends on live traffic (rate, ct state)"));
                continue;
            }
            bool matched = rule.Matches(frame, packet, socket, ConnectionState.None);
            steps.Add(new Step(rule.Rule.Handle, rule.Rule.ToString(), matched, matched ? rule.Action.ToString().ToLowerInvariant() : ""));
            if (matched && rule.Action is not (FilterAction.Count or FilterAction.Log))
            {
                verdict = $"{rule.Action.ToString().ToLowerInvariant()} (rule {rule.Rule.Handle})";
                break;
            }
        }
        string description = string.Create(CultureInfo.InvariantCulture,
            $"{chain.ToString().ToLowerInvariant()} {IpProtocols.Name(packet.Protocol)} {packet.Source}:{packet.SourcePort} > {packet.Destination}:{packet.DestinationPort} len {packet.IpLength}");
        return new Result(description, owner, steps, verdict);
    }

    private static ushort Port(string text) =>
        ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ushort port) ? port : throw new FormatException($"'{text}' is not a port.");

    private static int Payload(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int bytes) ? bytes
        : throw new FormatException($"'payload {text}': give a payload length in bytes, from 0 to the MTU's.");
}
