using System.Globalization;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// `norman trace`: builds the packet an administrator describes — <c>udp saddr 198.18.0.2 sport 40000 dport 80</c>, or
/// over IPv6 when an address given is IPv6 (the host's side then its IPv6 address) —
/// and walks a chain of the policy in force over it, rule by rule, saying which matched and what decided, as
/// `nft monitor trace` does for live packets. Counters and rate limits are left untouched.
/// </summary>
public static class PacketTrace
{
    public sealed record Step(long Handle, string Rule, bool Matched, string Note);

    public sealed record Result(string Packet, string Owner, IReadOnlyList<Step> Steps, string Verdict);

    /// <summary>The largest packet a trace describes: the MTU's.</summary>
    public const int MaxTracedIpLength = 1500;

    /// <summary>Builds the described packet; addresses default to the peer side and this host.</summary>
    public static (byte[] Frame, ParsedPacket Packet) Build(Chain chain, IReadOnlyList<string> words, HostInterface host)
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
        bool v6 = source is { IsV4: false } || destination is { IsV4: false };
        if (v6 && (source is { IsV4: true } || destination is { IsV4: true }))
        {
            throw new FormatException("A packet's two addresses are of one family: give both as IPv4, or both as IPv6.");
        }
        // As on the wire: the dataplane carries no fragments, so no packet is larger than the MTU.
        int headers = (v6 ? Ipv6Header.Size : Ipv4Header.Size) + (protocol == IpProtocols.Udp ? UdpHeader.Size : TcpHeader.Size);
        int maxPayload = MaxTracedIpLength - headers;
        if (payload > maxPayload)
        {
            throw new FormatException($"A payload of {payload} bytes does not fit one {MaxTracedIpLength}-byte {(v6 ? "IPv6" : "IPv4")} " +
                $"{IpProtocols.Name(protocol)} packet: use 0 to {maxPayload}.");
        }
        NetAddress Ours() => v6 ? host.Address6 ?? throw new FormatException("This host has no IPv6 address (--address6): give both addresses of an IPv6 packet.")
            : host.Address;
        var remote = NetAddress.Parse(v6 ? "2001:db8::2" : "198.18.0.2");
        var src = source ?? (chain == Chain.Ingress ? remote : Ours());
        var dst = destination ?? (chain == Chain.Ingress ? Ours() : remote);
        var frame = new byte[EthernetHeader.Size + headers + payload];
        EthernetHeader.Write(frame, host.Mac, MacAddress.Zero, v6 ? EtherTypes.IPv6 : EtherTypes.IPv4);
        int length = protocol == IpProtocols.Udp
            ? UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), src, sourcePort, dst, destinationPort, payload)
            : TcpSegmentBuilder.Write(frame.AsSpan(EthernetHeader.Size), src, sourcePort, dst, destinationPort,
                new TcpSegmentFields(0, 0, TcpHeader.Syn, 0), [], payload);
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
