using System.Globalization;
using System.Text;
using Norman.Core.Protocol;

namespace Norman.Daemon.Observability;

/// <summary>
/// Every counter of <see cref="StatsInfo"/> in Prometheus's text exposition format (version 0.0.4), named as its
/// conventions ask: a `norman_` prefix, `_total` on counters, base units (bytes), and labels rather than names for
/// what varies (drop reason, application, rule, class), so that `sum by (app)` or `rate(...)` work as expected.
/// </summary>
public static class PrometheusText
{
    /// <summary>Counters of the dataplane that are levels, not totals.</summary>
    private static readonly HashSet<string> Gauges = ["sockets", "conntrack_flows"];

    public static string Render(StatsInfo stats)
    {
        var text = new StringBuilder();
        Family(text, "norman_port_info", "gauge", "The daemon's port: its kind and device, and for xdp its mode (native or generic, copy or zero-copy).");
        Sample(text, "norman_port_info", [("port", stats.Port)], 1);
        foreach (var (name, value) in stats.Counters.Where(c => !c.Key.StartsWith("drop_", StringComparison.Ordinal)).OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            bool gauge = Gauges.Contains(name);
            Family(text, gauge ? $"norman_{name}" : $"norman_{name}_total", gauge ? "gauge" : "counter", $"The dataplane's {name.Replace('_', ' ')}.");
            Sample(text, gauge ? $"norman_{name}" : $"norman_{name}_total", [], value);
        }
        Family(text, "norman_drops_total", "counter", "Packets the dataplane dropped, by reason.");
        foreach (var (name, value) in stats.Counters.Where(c => c.Key.StartsWith("drop_", StringComparison.Ordinal)).OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            Sample(text, "norman_drops_total", [("reason", name["drop_".Length..])], value);
        }

        var sockets = stats.Sockets.Select(s => (Socket: s, Labels: new[]
        {
            ("app", s.ProcessName), ("pid", Text(s.Pid)), ("uid", Text(s.Uid)), ("protocol", s.Protocol), ("local_port", Text(s.LocalPort)),
        })).ToList();
        foreach (var (metric, help, value) in new (string, string, Func<SocketInfo, long>)[]
        {
            ("norman_socket_received_packets_total", "Packets delivered to the socket.", s => s.RxPackets),
            ("norman_socket_received_bytes_total", "Bytes delivered to the socket.", s => s.RxBytes),
            ("norman_socket_sent_packets_total", "Packets the socket sent.", s => s.TxPackets),
            ("norman_socket_sent_bytes_total", "Bytes the socket sent.", s => s.TxBytes),
            ("norman_socket_tx_throttled_total", "Breaths the dataplane stopped skipping the socket's bad TX slots at its bound.", s => s.TxThrottled),
            ("norman_socket_tcp_challenge_acks_total", "Challenge ACKs a TCP socket's connections sent (RFC 5961), as its application reports.", s => s.TcpChallengeAcks),
            ("norman_socket_tcp_resets_ignored_total", "Resets a TCP socket's connections ignored as not exact or out of window (RFC 5961).", s => s.TcpResetsIgnored),
        })
        {
            Family(text, metric, "counter", help);
            foreach (var (socket, labels) in sockets)
            {
                Sample(text, metric, labels, value(socket));
            }
        }
        Family(text, "norman_socket_drops_total", "counter", "Packets of the socket dropped, by reason.");
        foreach (var (socket, labels) in sockets)
        {
            foreach (var (reason, count) in socket.Drops.OrderBy(d => d.Key, StringComparer.Ordinal))
            {
                Sample(text, "norman_socket_drops_total", [.. labels, ("reason", reason)], count);
            }
        }
        Family(text, "norman_socket_receive_queue_packets", "gauge", "Packets waiting in the socket's RX pipe (ss's Recv-Q).");
        foreach (var (socket, labels) in sockets)
        {
            Sample(text, "norman_socket_receive_queue_packets", labels, socket.RecvQ);
        }

        Family(text, "norman_rule_packets_total", "counter", "Packets a filter rule matched.");
        foreach (var rule in stats.Rules)
        {
            Sample(text, "norman_rule_packets_total", [("chain", rule.Chain), ("handle", Text(rule.Handle)), ("rule", rule.Rule)], rule.Packets);
        }
        Family(text, "norman_rule_bytes_total", "counter", "Bytes a filter rule matched.");
        foreach (var rule in stats.Rules)
        {
            Sample(text, "norman_rule_bytes_total", [("chain", rule.Chain), ("handle", Text(rule.Handle)), ("rule", rule.Rule)], rule.Bytes);
        }

        foreach (var (metric, type, help, value) in new (string, string, string, Func<QosClassInfo, long>)[]
        {
            ("norman_qos_class_sent_packets_total", "counter", "Packets a QoS class sent.", c => c.Packets),
            ("norman_qos_class_sent_bytes_total", "counter", "Bytes a QoS class sent.", c => c.Bytes),
            ("norman_qos_class_policed_packets_total", "counter", "Packets a QoS class's policing dropped.", c => c.Drops),
            ("norman_qos_class_backlog_packets", "gauge", "Packets waiting in a QoS class's TX pipes.", c => c.Backlog),
        })
        {
            Family(text, metric, type, help);
            foreach (var trafficClass in stats.Classes)
            {
                Sample(text, metric, [("class", trafficClass.Name)], value(trafficClass));
            }
        }
        return text.ToString();
    }

    private static void Family(StringBuilder text, string metric, string type, string help)
    {
        text.Append("# HELP ").Append(metric).Append(' ').AppendLine(help);
        text.Append("# TYPE ").Append(metric).Append(' ').AppendLine(type);
    }

    private static void Sample(StringBuilder text, string metric, (string Name, string Value)[] labels, long value)
    {
        text.Append(metric);
        if (labels.Length > 0)
        {
            text.Append('{').AppendJoin(',', labels.Select(l => $"{l.Name}=\"{Escape(l.Value)}\"")).Append('}');
        }
        text.Append(' ').AppendLine(Text(value));
    }

    /// <summary>A label value as the format wants it: backslash, double quote and line feed escaped.</summary>
    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal)
        .Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
