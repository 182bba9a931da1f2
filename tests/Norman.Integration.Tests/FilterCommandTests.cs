using System.Diagnostics;
using System.Text.Json;
using Norman.Core.Protocol;

namespace Norman.Integration.Tests;

/// <summary>`norman filter` as the administrator (and a user who is not one) runs it, against a daemon.</summary>
public sealed class FilterCommandTests : DaemonTest
{
    [Fact]
    public async Task Root_adds_rules_that_list_shows_with_handles_and_counters_and_json_parses()
    {
        using var web = Daemon.Start("echo-server", "8080");
        web.ReadLine();
        await Norman("filter", "add", "ingress", "udp", "dport", "8080", "drop");
        await Norman("filter", "insert", "ingress", "ip", "saddr", "198.18.0.0/24", "count");
        Daemon.Peer.SendUdp(40000, 8080, "GET /"u8);
        Assert.True(ApplicationProcessTests.WaitFor(() => Daemon.Daemon.Engine.Counters.Drops(global::Norman.Daemon.Dataplane.DropReason.FilteredIngress) == 1));

        string list = await Norman("filter", "list");
        Assert.Matches(@"chain ingress \{ policy accept\s+ip saddr 198\.18\.0\.0/24 count\s+# handle 2, packets 1 bytes \d+\s+udp dport 8080 drop\s+# handle 1, packets 1", list);
        var json = JsonSerializer.Deserialize(await Norman("filter", "list", "--json"), ControlJson.Default.FilterInfo)!;
        Assert.Equal(["ip saddr 198.18.0.0/24 count", "udp dport 8080 drop"], json.Rules.Select(r => r.Rule));
        Assert.Null(Daemon.Peer.TakeDatagram(TimeSpan.FromMilliseconds(100)));

        await Norman("filter", "delete", "1");
        Daemon.Peer.SendUdp(40000, 8080, "GET /"u8);
        Assert.NotNull(Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Trace_walks_the_rules_over_a_described_packet_and_names_its_owner()
    {
        using var web = Daemon.Start("echo-server", "8080");
        web.ReadLine();
        await Norman("filter", "add", "ingress", "ip", "saddr", "198.18.0.0/24", "count");
        await Norman("filter", "add", "ingress", "udp", "dport", "53", "drop");
        await Norman("filter", "add", "ingress", "app", "echo-server", "reject");

        string trace = await Norman("trace", "ingress", "udp", "saddr", "198.18.0.2", "sport", "40000", "dport", "8080");
        Assert.Contains($"trace ingress udp 198.18.0.2:40000 > 198.18.0.1:8080 len 28 (app echo-server pid {web.Pid}", trace);
        Assert.Matches(@"rule ip saddr 198\.18\.0\.0/24 count\s+\(handle 1\)\s+match → count", trace);
        Assert.Matches(@"rule udp dport 53 drop\s+\(handle 2\)\s+no match", trace);
        Assert.Matches(@"rule app echo-server reject\s+\(handle 3\)\s+match → reject", trace);
        Assert.Contains("verdict reject (rule 3)", trace);
        Assert.Contains("verdict policy accept", await Norman("trace", "ingress", "udp", "dport", "9999"));
        Assert.Equal(0, Daemon.Daemon.Policy.List().Rules[0].Counters.Packets); // tracing counts nothing
    }

    [Fact]
    public async Task Trace_builds_an_ipv6_packet_when_its_addresses_are_ipv6_and_ip6_rules_decide_it()
    {
        await Norman("filter", "add", "ingress", "ip", "saddr", "198.18.0.0/24", "drop");
        await Norman("filter", "add", "ingress", "ip6", "saddr", "2001:db8::/32", "tcp", "dport", "443", "drop");

        string trace = await Norman("trace", "ingress", "tcp", "saddr", "2001:db8::2", "daddr", "2001:db8::1", "dport", "443");
        Assert.Contains("trace ingress tcp 2001:db8::2:40000 > 2001:db8::1:443 len 60", trace);
        Assert.Matches(@"rule ip saddr 198\.18\.0\.0/24 drop\s+\(handle 1\)\s+no match", trace);
        Assert.Contains("verdict drop (rule 2)", trace);
        await Norman("filter", "set", "add", "blocked6", "ipv6_addr", "2001:db8:9::/48", "2001:db8::66");
        await Norman("filter", "add", "ingress", "ip6", "saddr", "@blocked6", "drop");
        Assert.Contains("verdict drop (rule 3)", await Norman("trace", "ingress", "udp", "saddr", "2001:db8:9::1", "daddr", "2001:db8::1", "dport", "53"));
        Assert.Contains("verdict drop (rule 3)", await Norman("trace", "ingress", "udp", "saddr", "2001:db8::66", "daddr", "2001:db8::1", "dport", "53"));
        Assert.Contains("verdict policy accept", await Norman("trace", "ingress", "udp", "saddr", "2001:db8::67", "daddr", "2001:db8::1", "dport", "53"));
        Assert.Contains("set blocked6 { type ipv6_addr; 2 elements }", await Norman("filter", "list"));

        var (code, refusal) = await Try("trace", "ingress", "udp", "saddr", "2001:db8::2", "daddr", "198.18.0.1");
        Assert.NotEqual(0, code);
        Assert.Contains("one family", refusal);
    }

    [Fact]
    public async Task A_live_trace_shows_the_next_packets_rules_verdicts_and_owner_in_both_directions()
    {
        using var web = Daemon.Start("echo-server", "8080");
        web.ReadLine();
        await Norman("filter", "add", "ingress", "udp", "dport", "8080", "count");
        await Norman("filter", "add", "egress", "app", "echo-server", "accept");
        var start = new ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "trace", "--live", "-c", "2", "--timeout", "30", "udp", "port", "8080" })
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["NORMAN_SOCKET"] = Daemon.SocketPath;
        using var trace = Process.Start(start)!;
        Assert.StartsWith("tracing the next 2 packets", await trace.StandardError.ReadLineAsync());

        Daemon.Peer.SendUdp(40000, 8080, "traced"u8);
        string output = await trace.StandardOutput.ReadToEndAsync();
        await trace.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        Assert.Contains($"trace ingress udp 198.18.0.2:40000 > 198.18.0.1:8080 len 34 (app echo-server pid {web.Pid})", output);
        Assert.Contains("rule udp dport 8080 count (handle 1) match", output);
        Assert.Contains("verdict accept (policy)", output);
        Assert.Contains($"trace egress udp 198.18.0.1:8080 > 198.18.0.2:40000 len 34 (app echo-server pid {web.Pid})", output);
        Assert.Contains("verdict accept (rule 2)", output);
        Assert.Null(Daemon.Daemon.Engine.Trace);
    }

    [Fact]
    public async Task Sets_are_made_filled_and_used_from_the_command_line()
    {
        await Norman("filter", "set", "add", "blocked", "ipv4_addr", "203.0.113.7");
        await Norman("filter", "element", "add", "blocked", "203.0.113.9", "198.18.0.2");
        await Norman("filter", "add", "ingress", "ip", "saddr", "@blocked", "drop");
        string list = await Norman("filter", "list");
        Assert.Contains("ip saddr @blocked drop", list);
        Assert.Contains("set blocked { type ipv4_addr; 3 elements }", list);
        Assert.Contains("verdict drop (rule 1)", await Norman("trace", "ingress", "udp", "saddr", "198.18.0.2", "dport", "5000"));
        var (code, output) = await Try("filter", "set", "delete", "blocked");
        Assert.Equal(1, code);
        Assert.Contains("used by rule 1", output);
    }

    [RootFact]
    public void A_user_who_is_not_an_administrator_is_refused_clearly()
    {
        using var nobody = AppProcess.Start("norman", Daemon.SocketPath, "65534", "filter", "--socket", Daemon.SocketPath, "add", "ingress", "drop");
        Assert.True(nobody.Process.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal(77, nobody.Process.ExitCode);
        Assert.Contains("needs root", nobody.Process.StandardError.ReadToEnd());
        Assert.Empty(Daemon.Daemon.Engine.Policy.Ingress);
    }

    [Fact]
    public async Task A_bad_pcap_expression_is_refused_with_libpcaps_message_and_nothing_changes()
    {
        var (code, output) = await Try("filter", "add", "ingress", "pcap", "port eleventy", "drop");
        Assert.Equal(1, code);
        Assert.Contains("bad filter expression 'port eleventy'", output);
        Assert.Empty(Daemon.Daemon.Engine.Policy.Ingress);
    }

    /// <summary>
    /// A 7,000-term rule from root once ran libpcap's optimiser for over ten minutes and 3 GB, and blocked `filter list`:
    /// every expression is bounded (2 KiB), and one at the bound compiles off the control loop in about a second.
    /// </summary>
    [Fact]
    public async Task An_administrators_huge_pcap_rule_is_refused_at_once_and_nothing_changes()
    {
        string expression = string.Join(" or ", Enumerable.Range(1, 7000).Select(i => $"port {i}"));
        var (code, output) = await Try("filter", "add", "ingress", "pcap", expression, "drop");
        Assert.Equal(1, code);
        Assert.Contains("over the 2048-byte limit for a filter expression", output);
        Assert.Empty(Daemon.Daemon.Engine.Policy.Ingress);

        string atTheBound = string.Join(" or ", Enumerable.Range(1, 180).Select(i => $"port {i}"))[..2040];
        atTheBound = atTheBound[..atTheBound.LastIndexOf(" or ", StringComparison.Ordinal)];
        await Norman("filter", "add", "ingress", "pcap", atTheBound, "drop");
        Assert.Single(Daemon.Daemon.Engine.Policy.Ingress);
    }

    [Fact]
    public async Task Save_and_restore_round_trip_and_dry_run_shows_the_difference()
    {
        await Norman("filter", "add", "egress", "app", "bobapp", "drop");
        string saved = await Norman("filter", "save");
        string file = Path.Combine(Daemon.Directory, "policy.rules");
        File.WriteAllText(file, saved.Replace("policy ingress accept", "policy ingress drop") + "add ingress udp dport 6379 accept\n");

        string diff = await Norman("filter", "restore", "--dry-run", file);
        Assert.Contains("- policy ingress accept", diff);
        Assert.Contains("+ policy ingress drop", diff);
        Assert.Contains("+ add ingress udp dport 6379 accept", diff);
        Assert.Empty(Daemon.Daemon.Engine.Policy.Ingress);

        await Norman("filter", "restore", file);
        Assert.Contains("add ingress udp dport 6379 accept", await Norman("filter", "save"));
        Assert.Contains("policy ingress drop", await Norman("filter", "save"));
    }

    /// <summary>
    /// Item 1 of the trust issue: rules with names that need quoting (a space, an empty name, a quote in a log prefix, a
    /// cgroup path with a space) go into the policy file, a new daemon starts from it with the same rules, and save piped
    /// to restore reads back the same policy.
    /// </summary>
    [Fact]
    public async Task Every_rule_the_daemon_accepts_survives_its_policy_file_and_save_piped_to_restore()
    {
        string file = Path.Combine(Daemon.Directory, "kept.rules");
        string[][] rules =
        [
            ["add", "ingress", "app", "my app", "drop"],
            ["add", "ingress", "app", "", "drop"],
            ["add", "egress", "udp", "dport", "53", "log", "prefix", "x\"y"],
            ["add", "egress", "cgroup", "/system.slice/my service.service", "drop"],
            ["add", "ingress", "pcap", "udp and port 53", "count"],
        ];
        var listed = new List<string>();
        await using (var first = new DaemonFixture(configure: options => options.PolicyFile = file))
        {
            foreach (var rule in rules)
            {
                var (code, output) = await TryAt(first.SocketPath, ["filter", .. rule]);
                Assert.True(code == 0, output);
            }
            listed = first.Daemon.Policy.List().Rules.Select(r => r.Rule.ToString()).ToList();

            var (saved, savedText) = await TryAt(first.SocketPath, "filter", "save");
            Assert.Equal(0, saved);
            string savedFile = Path.Combine(Daemon.Directory, "saved.rules");
            File.WriteAllText(savedFile, savedText);
            var (restored, restoreOutput) = await TryAt(first.SocketPath, "filter", "restore", savedFile);
            Assert.True(restored == 0, restoreOutput);
            Assert.Equal(listed, first.Daemon.Policy.List().Rules.Select(r => r.Rule.ToString()));
        }
        await using var second = new DaemonFixture(configure: options => options.PolicyFile = file);
        Assert.Equal(listed, second.Daemon.Policy.List().Rules.Select(r => r.Rule.ToString()));
        Assert.Equal(rules.Length, listed.Count);
    }

    /// <summary>
    /// Item 2: an empty restore is refused and changes nothing; a file that says nothing of a chain's policy leaves a drop
    /// policy as it is; 'flush ruleset' in the file is what empties the policy.
    /// </summary>
    [Fact]
    public async Task An_empty_or_partial_restore_never_opens_the_firewall()
    {
        await Norman("filter", "policy", "ingress", "drop");
        await Norman("filter", "add", "ingress", "udp", "dport", "53", "accept");
        string empty = Path.Combine(Daemon.Directory, "empty.rules");
        File.WriteAllText(empty, "");
        var (code, output) = await Try("filter", "restore", empty);
        Assert.Equal(1, code);
        Assert.Contains("flush ruleset", output);
        Assert.Equal("drop", (await PolicyOf("ingress")));
        Assert.Single(Daemon.Daemon.Engine.Policy.Ingress);

        await Norman("filter", "restore", "--allow-empty", empty);
        Assert.Single(Daemon.Daemon.Engine.Policy.Ingress);

        string partial = Path.Combine(Daemon.Directory, "partial.rules");
        File.WriteAllText(partial, "add ingress udp dport 123 accept\n");
        await Norman("filter", "restore", partial);
        Assert.Equal("drop", await PolicyOf("ingress"));
        Assert.Equal(2, Daemon.Daemon.Engine.Policy.Ingress.Length);

        File.WriteAllText(partial, "flush ruleset\nadd ingress udp dport 123 accept\n");
        await Norman("filter", "restore", partial);
        Assert.Equal("accept", await PolicyOf("ingress"));
        Assert.Single(Daemon.Daemon.Engine.Policy.Ingress);
    }

    /// <summary>Item 3: a dry run parses and compiles as the real restore does and reports the same errors with file and line.</summary>
    [Theory]
    [InlineData("add ingress udp dport 99999 drop", ":2:")]
    [InlineData("frobnicate", ":2:")]
    [InlineData("add ingress pcap \"port eleventy\" drop", "port eleventy")]
    [InlineData("add ingress ip saddr @nosuchset drop", "no set 'nosuchset'")]
    public async Task A_dry_run_refuses_what_the_restore_would_refuse(string line, string expected)
    {
        string file = Path.Combine(Daemon.Directory, "bad.rules");
        File.WriteAllText(file, $"policy ingress accept\n{line}\n");
        var (code, output) = await Try("filter", "restore", "--dry-run", file);
        Assert.Equal(1, code);
        Assert.Contains(expected, output);
        var (real, realOutput) = await Try("filter", "restore", file);
        Assert.Equal(1, real);
        Assert.Contains(expected, realOutput);
    }

    [Fact]
    public async Task A_dry_run_keeps_qos_lines_as_a_real_restore_keeps_them_and_says_nothing_changed()
    {
        await Norman("qos", "add", "database", "band", "0", "match", "app", "kvdb");
        string file = Path.Combine(Daemon.Directory, "filter-only.rules");
        File.WriteAllText(file, "add ingress udp dport 53 accept\n");
        string diff = await Norman("filter", "restore", "--dry-run", file);
        Assert.DoesNotContain("- qos", diff);
        Assert.Contains("+ add ingress udp dport 53 accept", diff);
        Assert.Contains("nothing was changed", diff);
        Assert.Empty(Daemon.Daemon.Engine.Policy.Ingress);

        var (code, output) = await Try("filter", "restore", "--dry-run", "/nonexistent/policy.rules");
        Assert.Equal(1, code);
        Assert.Contains("cannot read /nonexistent/policy.rules", output);
        Assert.DoesNotContain("   at ", output);
    }

    private async Task<string> PolicyOf(string chain) =>
        JsonSerializer.Deserialize(await Norman("filter", "list", "--json"), ControlJson.Default.FilterInfo)! is { } info
            ? chain == "ingress" ? info.IngressPolicy : info.EgressPolicy : "";
}
