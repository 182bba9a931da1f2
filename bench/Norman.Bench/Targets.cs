using System.Globalization;
using System.Text;

namespace Norman.Bench;

/// <summary>
/// The performance targets Norman holds itself to (issues 7 and 8), checked against the figures of one run: each is a
/// ratio of two medians measured in the same run, so it holds on any machine. A target whose figures the run did
/// not measure (a group left out, or the kernel's scenarios without root) is listed as not measured.
/// </summary>
public static class Targets
{
    private sealed record Target(string Name, string Numerator, string Denominator, double Ratio, bool AtMost, string Goal);

    private static readonly Target[] All =
    [
        new("B: no policy, against the bare ring (64 B)", "norman_nopolicy_mpps_64", "raw_ring_mpps_64", 0.5, false, "≥ 50% of A"),
        new("C: 1,000 rules and every policy, against no policy", "norman_policy1k_mpps_64", "norman_nopolicy_mpps_64", 0.8, false, "within 20% of B"),
        new("C: 10,000 rules and every policy, against no policy", "norman_policy10k_mpps_64", "norman_nopolicy_mpps_64", 0.8, false, "within 20% of B"),
        new("C against the kernel with 1,000 iptables rules", "norman_policy1k_mpps_64", "kernel_udp_pps_1k_iptables", 50, false, "≥ 50×"),
        new("C against the kernel with 1,000 nft rules", "norman_policy1k_mpps_64", "kernel_udp_pps_1k_nft", 50, false, "≥ 50×"),
        new("C against the kernel with no rules", "norman_policy1k_mpps_64", "kernel_udp_pps_0rules", 20, false, "≥ 20×"),
        new("E: round trip p50, Norman against the kernel", "rtt_norman_p50_us", "rtt_kernel_p50_us", 0.1, true, "≤ 1/10"),
        new("E: round trip p99, Norman against the kernel", "rtt_norman_p99_us", "rtt_kernel_p99_us", 0.2, true, "≤ 1/5"),
        new("F: 1,000,000 flows against 1,000 flows", "flows_1m_mpps", "flows_1k_mpps", 0.8, false, "within 20%"),
        new("Isolation (issue 8): beside 1,000 churning applications, against alone", "isolation_churn_mpps_64", "isolation_alone_mpps_64", 0.9, false, "within 10%"),
    ];

    /// <summary>A markdown table of every target: the two figures, their ratio, and met or not.</summary>
    public static string Table(IReadOnlyList<Measurement> figures)
    {
        var byKey = figures.ToDictionary(f => f.Key, f => f.Median);
        var table = new StringBuilder();
        table.AppendLine("| target | goal | figures (medians of this run) | ratio | met |");
        table.AppendLine("|---|---|---|---:|---|");
        foreach (var target in All)
        {
            if (!byKey.TryGetValue(target.Numerator, out double top) || !byKey.TryGetValue(target.Denominator, out double bottom) || bottom == 0)
            {
                table.AppendLine(CultureInfo.InvariantCulture, $"| {target.Name} | {target.Goal} | not measured in this run | | |");
                continue;
            }
            // Mpps against pps: the ratio is taken in packets per second on both sides.
            double scale = target.Numerator.Contains("mpps", StringComparison.Ordinal) && !target.Denominator.Contains("mpps", StringComparison.Ordinal) ? 1e6 : 1;
            double ratio = top * scale / bottom;
            bool met = target.AtMost ? ratio <= target.Ratio : ratio >= target.Ratio;
            table.AppendLine(CultureInfo.InvariantCulture,
                $"| {target.Name} | {target.Goal} | `{target.Numerator}` {top:0.###} / `{target.Denominator}` {bottom:0.###} | {ratio:0.###} | {(met ? "yes" : "**no**")} |");
        }
        Limit(table, byKey, "bytes_per_flow", 128, "F: memory per tracked flow", "≤ 128 bytes");
        Limit(table, byKey, "policy10k_apply_ms", 50, "G: a 10,000-rule policy takes effect", "< 50 ms");
        Limit(table, byKey, "policy_swap_lost_packets", 0, "G: packets lost while it does", "0");
        Limit(table, byKey, "hot_loop_alloc_bytes", 0, "the dataplane's hot loop allocates", "0 bytes");
        return table.ToString();
    }

    private static void Limit(StringBuilder table, Dictionary<string, double> byKey, string key, double most, string name, string goal)
    {
        table.AppendLine(byKey.TryGetValue(key, out double value)
            ? string.Create(CultureInfo.InvariantCulture, $"| {name} | {goal} | `{key}` {value:0.###} | | {(value <= most ? "yes" : "**no**")} |")
            : $"| {name} | {goal} | not measured in this run | | |");
    }
}
