using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;
using Norman.Daemon.Tests.Dataplane;

namespace Norman.Daemon.Tests.Policy;

/// <summary>Real packets through the engine's filter stages, with the policy published as the daemon does.</summary>
public sealed class FilterTests : IDisposable
{
    private readonly EngineHarness _wire = new();
    private readonly PolicyStore _policy;

    public FilterTests()
    {
        _wire.ResolvePeer();
        _policy = new PolicyStore(_wire.Engine, _wire.Names, null);
    }

    public void Dispose() => _wire.Dispose();

    private void Rule(string chain, string rule) => _policy.Add(PolicyStore.ParseChain(chain), FilterRuleParser.Words(rule));

    private long RuleCount(int index, bool packets = true)
    {
        var rule = _policy.List().Rules[index];
        return packets ? rule.Counters.Packets : rule.Counters.Bytes;
    }

    [Fact]
    public void An_ingress_drop_by_port_stops_that_port_and_counts()
    {
        var web = _wire.Bind(80);
        var other = _wire.Bind(5000);
        Rule("ingress", "udp dport 80 drop");
        _wire.Peer.SendUdp(40000, 80, "GET /"u8);
        _wire.Peer.SendUdp(40000, 5000, "hello"u8);
        _wire.Breathe();

        Assert.Empty(web.ReceiveAll());
        Assert.Single(other.ReceiveAll());
        Assert.Equal(1, RuleCount(0));
        Assert.Equal(1, _wire.Engine.Counters.Drops(DropReason.FilteredIngress));
        Assert.Equal(1, web.Socket.Pipe.Counters.Drops(DropReason.FilteredIngress));
    }

    [Fact]
    public void An_ingress_reject_answers_the_peer_with_port_unreachable()
    {
        _wire.Bind(80);
        Rule("ingress", "udp dport 80 reject");
        _wire.Peer.SendUdp(40000, 80, "GET /"u8);
        _wire.Breathe();
        Assert.Equal(1, _wire.Peer.ReceivedPortUnreachable);
    }

    [Fact]
    public void Drop_by_application_stops_bob_and_not_the_database_in_both_directions()
    {
        var bob = _wire.Bind(7000, app: "bobapp");
        var database = _wire.Bind(6379, app: "kvdb");
        Rule("egress", "app bobapp drop");
        Rule("ingress", "app bobapp drop");
        bob.Send("bulk"u8, EngineHarness.HostAddress, 7000, EngineHarness.PeerAddress, 9000);
        database.Send("OK"u8, EngineHarness.HostAddress, 6379, EngineHarness.PeerAddress, 9000);
        _wire.Peer.SendUdp(40000, 7000, "to bob"u8);
        _wire.Peer.SendUdp(40000, 6379, "GET x"u8);
        _wire.Breathe();

        var sent = _wire.Peer.TakeDatagram(TimeSpan.Zero);
        Assert.Equal((ushort?)6379, sent?.SourcePort);
        Assert.Null(_wire.Peer.TakeDatagram(TimeSpan.Zero));
        Assert.Empty(bob.ReceiveAll());
        Assert.Single(database.ReceiveAll());
        Assert.Equal(1, bob.Socket.Pipe.Counters.Drops(DropReason.FilteredEgress));
        Assert.Equal(1, bob.Socket.Pipe.Counters.Drops(DropReason.FilteredIngress));
    }

    [Fact]
    public void A_drop_policy_lets_only_what_a_rule_accepts_and_count_rules_go_on()
    {
        var open = _wire.Bind(5000);
        var closed = _wire.Bind(5001);
        Rule("ingress", "ip saddr 198.18.0.0/24 count");
        Rule("ingress", "udp dport 5000 accept");
        _policy.SetPolicy(Chain.Ingress, FilterAction.Drop);
        _wire.Peer.SendUdp(40000, 5000, "in"u8);
        _wire.Peer.SendUdp(40000, 5001, "out"u8);
        _wire.Breathe();

        Assert.Single(open.ReceiveAll());
        Assert.Empty(closed.ReceiveAll());
        Assert.Equal(2, RuleCount(0));
        Assert.Equal(1, RuleCount(1));
    }

    [Fact]
    public void With_policy_drop_and_ct_state_established_replies_come_in_and_unsolicited_packets_do_not()
    {
        _wire.Peer.EchoOnPort(7);
        var app = _wire.Bind(5000);
        _policy.SetPolicy(Chain.Ingress, FilterAction.Drop);
        Rule("ingress", "ct state established,related accept");

        _wire.Peer.SendUdp(40000, 5000, "unsolicited"u8);
        _wire.Breathe();
        Assert.Empty(app.ReceiveAll());

        app.Send("question"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 7);
        _wire.Breathe();
        var reply = Assert.Single(app.ReceiveAll());
        Assert.Equal("question"u8.ToArray(), reply.Payload);

        _wire.Peer.SendUdp(40001, 5000, "from another port"u8);
        _wire.Breathe();
        Assert.Empty(app.ReceiveAll());
        Assert.Equal(1, _wire.Engine.Conntrack.Count);
        Assert.Equal(2, _wire.Engine.Counters.Drops(DropReason.FilteredIngress));
    }

    [Fact]
    public void A_chain_with_ct_state_is_cached_per_flow_and_state_so_a_flow_that_becomes_established_is_let_in()
    {
        _wire.Peer.EchoOnPort(7);
        var app = _wire.Bind(5000);
        _policy.SetPolicy(Chain.Ingress, FilterAction.Drop);
        for (int port = 1; port <= 100; port++)
        {
            Rule("ingress", $"udp dport {port} drop");
        }
        Rule("ingress", "ct state established accept");
        for (int i = 0; i < 3; i++)
        {
            _wire.Peer.SendUdp(7, 5000, "unsolicited"u8);
            _wire.Breathe();
        }
        Assert.Empty(app.ReceiveAll());
        Assert.True(_wire.Engine.Policy.IsCacheable(Chain.Ingress));
        Assert.Equal(2, _wire.Engine.IngressVerdicts.Hits); // the new flow's drop, from the cache after the first

        // The application asks the peer's echo port: the same 5-tuple, now established, is let in.
        app.Send("question"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 7);
        _wire.Breathe();
        Assert.Single(app.ReceiveAll());
        _wire.Peer.SendUdp(7, 5000, "again"u8);
        _wire.Breathe();
        Assert.Single(app.ReceiveAll());
        Assert.Equal(3, _wire.Engine.IngressVerdicts.Hits);
    }

    [Fact]
    public void An_established_flow_is_decided_by_the_verdict_cache_and_every_packet_still_counts()
    {
        var app = _wire.Bind(5000);
        for (int port = 1; port <= 1000; port++)
        {
            Rule("ingress", $"udp dport {port} drop");
        }
        Rule("ingress", "ip saddr 198.18.0.0/24 count");
        Rule("ingress", "udp dport 5000 accept");
        for (int i = 0; i < 10; i++)
        {
            _wire.Peer.SendUdp(40000, 5000, "x"u8);
            _wire.Breathe();
        }

        Assert.Equal(10, app.ReceiveAll().Count);
        Assert.Equal(9, _wire.Engine.IngressVerdicts.Hits);
        Assert.Equal(1, _wire.Engine.IngressVerdicts.Misses);
        Assert.Equal(10, RuleCount(1000));
        Assert.Equal(10, RuleCount(1001));

        _policy.Add(Chain.Ingress, ["udp", "dport", "5000", "drop"], atTop: true);
        _wire.Peer.SendUdp(40000, 5000, "x"u8);
        _wire.Breathe();
        Assert.Empty(app.ReceiveAll()); // the new generation is not served from the old cache
    }

    [Fact]
    public void A_swap_under_load_loses_no_packet_that_both_rulesets_accept()
    {
        var app = _wire.Bind(5000);
        const int Packets = 20_000;
        _wire.Peer.KeepDatagrams = false;
        _wire.Peer.StartFlood(40000, 5000, 18, Packets);
        long received = 0;
        for (int breath = 0; breath < Packets && received < Packets; breath++)
        {
            // Every few batches a new ruleset, which accepts this flow by another rule each time.
            if (breath % 3 == 0)
            {
                _policy.Restore(["flush ruleset", breath % 2 == 0 ? "add ingress udp dport 5000 accept" : "add ingress ip saddr 198.18.0.2/32 accept", "policy ingress drop"], "swap");
            }
            _wire.Engine.DoWork();
            received += app.ReceiveAll().Count;
        }
        Assert.Equal(Packets, received);
        Assert.Equal(0, _wire.Engine.Counters.TotalDrops());
    }

    [Fact]
    public void A_set_of_ten_thousand_addresses_is_matched_and_changed_in_one_swap()
    {
        var app = _wire.Bind(5000);
        var addresses = Enumerable.Range(0, 10_000).Select(i => $"203.0.{i / 256}.{i % 256}").ToList();
        _policy.AddSet("blocked", "ipv4_addr", addresses);
        Rule("ingress", "ip saddr @blocked drop");
        _wire.Peer.SendUdp(40000, 5000, "before"u8);
        _wire.Breathe();
        Assert.Single(app.ReceiveAll());

        _policy.ChangeElements("blocked", ["198.18.0.2"], remove: false);
        _wire.Peer.SendUdp(40000, 5000, "blocked"u8);
        _wire.Breathe();
        Assert.Empty(app.ReceiveAll());
        Assert.Equal(10_001, _policy.Sets().Single().Elements.Count);

        _policy.ChangeElements("blocked", ["198.18.0.2"], remove: true);
        _wire.Peer.SendUdp(40000, 5000, "after"u8);
        _wire.Breathe();
        Assert.Single(app.ReceiveAll());
    }

    [Fact]
    public void An_ipv6_set_holds_addresses_and_networks_of_several_lengths_and_only_ip6_matches_may_use_it()
    {
        var set = new NamedSet("blocked6", SetKind.Addresses6);
        set.Add([.. Enumerable.Range(1, 10_000).Select(i => $"2001:db8::{i:x}"), "2001:db8:7::/48", "fd00::/8"]);
        var frozen = set.Freeze6();
        Assert.True(frozen.Contains(NetAddress.Parse("2001:db8::2710")));     // the 10,000th address
        Assert.False(frozen.Contains(NetAddress.Parse("2001:db8::2711")));
        Assert.True(frozen.Contains(NetAddress.Parse("2001:db8:7:ffff::1"))); // inside the /48
        Assert.True(frozen.Contains(NetAddress.Parse("fd12:3456::1")));       // inside fd00::/8
        Assert.False(frozen.Contains(NetAddress.Parse("2001:db8:8::1")));
        set.Remove(["fd00::/8"]);
        Assert.False(set.Freeze6().Contains(NetAddress.Parse("fd12:3456::1")));

        _policy.AddSet("blocked6", "ipv6_addr", ["2001:db8::1"]);
        Rule("ingress", "ip6 saddr @blocked6 drop");
        Assert.Contains("holds ipv6_addr", Assert.Throws<FormatException>(() => Rule("ingress", "ip saddr @blocked6 drop")).Message);
        Assert.Throws<FormatException>(() => _policy.AddSet("blocked6", "ipv6_addr", ["198.18.0.1"]));
        Assert.Equal(1, _policy.Sets().Single().Count);
    }

    [Fact]
    public void A_port_set_matches_ports_and_sets_in_use_or_missing_are_refused()
    {
        var app = _wire.Bind(5000);
        _policy.AddSet("web", "inet_service", ["80", "443", "5000"]);
        Rule("ingress", "udp dport @web drop");
        _wire.Peer.SendUdp(40000, 5000, "x"u8);
        _wire.Breathe();
        Assert.Empty(app.ReceiveAll());

        Assert.Contains("used by rule", Assert.Throws<FormatException>(() => _policy.DeleteSet("web")).Message);
        Assert.Contains("no set 'nope'", Assert.Throws<FormatException>(() => Rule("ingress", "ip saddr @nope drop")).Message);
        Assert.Contains("holds inet_service", Assert.Throws<FormatException>(() => Rule("ingress", "ip saddr @web drop")).Message);
        Assert.Throws<FormatException>(() => _policy.AddSet("web", "inet_service", ["eighty"]));
        Assert.Equal(3, _policy.Sets().Single().Elements.Count);
    }

    [Theory]
    [InlineData("ip daddr 198.18.0.1/32 udp dport 5000-5001 drop", true, true, false)]
    [InlineData("udp sport 40000-40001 dport 5001 drop", false, true, false)]
    [InlineData("ip daddr 198.18.9.0/24 drop", false, false, false)]
    public void Addresses_and_port_ranges_decide_which_packets_drop(string rule, bool first, bool second, bool third)
    {
        var a = _wire.Bind(5000);
        var b = _wire.Bind(5001);
        var c = _wire.Bind(5002);
        Rule("ingress", rule);
        _wire.Peer.SendUdp(40000, 5000, "a"u8);
        _wire.Peer.SendUdp(40000, 5001, "b"u8);
        _wire.Peer.SendUdp(40000, 5002, "c"u8);
        _wire.Breathe();
        Assert.Equal(first, a.ReceiveAll().Count == 0);
        Assert.Equal(second, b.ReceiveAll().Count == 0);
        Assert.Equal(third, c.ReceiveAll().Count == 0);
    }

    [Fact]
    public void Gid_and_pid_rules_match_the_owner()
    {
        var app = _wire.Bind(5000, uid: 1234);
        Rule("egress", $"pid {Environment.ProcessId} count");
        Rule("egress", "gid 1234 drop");
        app.Send("x"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        _wire.Breathe();
        Assert.Null(_wire.Peer.TakeDatagram(TimeSpan.Zero));
        Assert.Equal(1, RuleCount(0));
        Assert.Equal(1, RuleCount(1));
    }

    [Fact]
    public void An_icmp_type_rule_stops_ping()
    {
        Rule("ingress", "icmp type echo-request drop");
        _wire.Peer.SendPing(1, 1, "ping"u8);
        _wire.Breathe();
        Assert.Equal(0, _wire.Peer.ReceivedEchoReplies);
        Assert.Equal(1, RuleCount(0));
    }

    [Fact]
    public void A_length_rule_drops_large_packets_only()
    {
        var app = _wire.Bind(5000);
        Rule("ingress", "length 1000- drop");
        _wire.Peer.SendUdp(40000, 5000, new byte[100]);
        _wire.Peer.SendUdp(40000, 5000, new byte[1200]);
        _wire.Breathe();
        Assert.Equal(100, Assert.Single(app.ReceiveAll()).Payload.Length);
    }

    [Fact]
    public void A_cgroup_rule_matches_the_owners_cgroup()
    {
        var service = _wire.Bind(5000, cgroup: "/system.slice/kvdb.service");
        var user = _wire.Bind(5001, cgroup: "/user.slice");
        Rule("ingress", "cgroup /system.slice/kvdb.service drop");
        _wire.Peer.SendUdp(40000, 5000, "a"u8);
        _wire.Peer.SendUdp(40000, 5001, "b"u8);
        _wire.Breathe();
        Assert.Empty(service.ReceiveAll());
        Assert.Single(user.ReceiveAll());
    }

    [Fact]
    public void A_rate_limit_lets_the_burst_through_and_drops_what_is_over()
    {
        var app = _wire.Bind(5000);
        Rule("ingress", "udp dport 5000 limit rate over 5/second burst 5 drop");
        for (int i = 0; i < 20; i++)
        {
            _wire.Peer.SendUdp(40000, 5000, "x"u8);
        }
        _wire.Breathe();
        Assert.Equal(5, app.ReceiveAll().Count);
        Assert.Equal(15, RuleCount(0));
    }

    [Fact]
    public void A_log_rule_logs_with_the_owning_application_and_goes_on()
    {
        var app = _wire.Bind(5000, app: "kvdb");
        Rule("ingress", "udp dport 5000 log prefix \"db:\"");
        Rule("ingress", "udp dport 5000 drop");
        _wire.Peer.SendUdp(40000, 5000, "GET x"u8);
        _wire.Breathe();

        Assert.Empty(app.ReceiveAll());
        var line = Assert.Single(_policy.DrainLog());
        Assert.Contains("db: ingress handle 1: udp 198.18.0.2:40000 > 198.18.0.1:5000", line);
        Assert.Contains("app kvdb", line);
        Assert.Empty(_policy.DrainLog());
    }

    [Fact]
    public void A_tcp_reject_with_tcp_reset_answers_the_peer_with_a_reset()
    {
        Rule("ingress", "tcp dport 80 reject with tcp reset");
        _wire.Peer.SendFrame(TcpFrame(TcpHeader.Syn));
        _wire.Breathe();
        Assert.Equal(1, _wire.Engine.Counters.TcpResetsSent);
        Assert.Equal(1, _wire.Peer.ReceivedTcpResets);
    }

    [Fact]
    public void A_tcp_flags_rule_counts_syns_and_not_acks()
    {
        Rule("ingress", "tcp flags syn / syn,ack count");
        _wire.Peer.SendFrame(TcpFrame(TcpHeader.Syn));
        _wire.Peer.SendFrame(TcpFrame(TcpHeader.Ack));
        _wire.Peer.SendFrame(TcpFrame(TcpHeader.Syn | TcpHeader.Ack));
        _wire.Breathe();
        Assert.Equal(1, RuleCount(0));
    }

    private byte[] TcpFrame(byte flags)
    {
        // With a right checksum: the dataplane drops a segment with a wrong one before the filter sees it.
        var frame = new byte[EthernetHeader.Size + TcpSegmentBuilder.HeaderLength];
        EthernetHeader.Write(frame, _wire.Engine.Host.Mac, _wire.Peer.Mac, EtherTypes.IPv4);
        TcpSegmentBuilder.Write(frame.AsSpan(EthernetHeader.Size), EngineHarness.PeerAddress, 80, EngineHarness.HostAddress, 80,
            new TcpSegmentFields(0, 0, flags, 0), [], 0, identification: 1);
        return frame;
    }

    [Fact]
    public void A_pcap_expression_rule_matches_what_libpcap_would()
    {
        var app = _wire.Bind(5000);
        Rule("ingress", "pcap \"udp and greater 200\" drop");
        _wire.Peer.SendUdp(40000, 5000, new byte[50]);
        _wire.Peer.SendUdp(40000, 5000, new byte[500]);
        _wire.Breathe();

        var received = Assert.Single(app.ReceiveAll());
        Assert.Equal(50, received.Payload.Length);
    }

    [Fact]
    public void A_uid_rule_matches_the_owners_uid()
    {
        var mine = _wire.Bind(5000, uid: 1000);
        var theirs = _wire.Bind(5001, uid: 2000);
        Rule("egress", "uid 2000 drop");
        mine.Send("a"u8, EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9000);
        theirs.Send("b"u8, EngineHarness.HostAddress, 5001, EngineHarness.PeerAddress, 9000);
        _wire.Breathe();
        Assert.Equal((ushort?)5000, _wire.Peer.TakeDatagram(TimeSpan.Zero)?.SourcePort);
        Assert.Null(_wire.Peer.TakeDatagram(TimeSpan.Zero));
    }

    [Fact]
    public void A_new_policy_takes_effect_at_the_next_batch_and_counters_survive_other_changes()
    {
        var app = _wire.Bind(5000);
        Rule("ingress", "udp dport 5000 count");
        _wire.Peer.SendUdp(40000, 5000, "one"u8);
        _wire.Breathe();
        Rule("ingress", "udp dport 5000 drop");
        Assert.Single(_wire.Engine.Policy.Ingress); // published, not yet taken: the dataplane swaps between batches
        _wire.Peer.SendUdp(40000, 5000, "two"u8);
        _wire.Breathe();

        Assert.Single(app.ReceiveAll());
        Assert.Equal(2, _wire.Engine.Policy.Ingress.Length);
        Assert.Equal(2, RuleCount(0));
        _policy.Delete(_policy.List().Rules[1].Rule.Handle);
        Assert.Equal(2, RuleCount(0));
    }

    [Fact]
    public void The_policy_is_saved_on_every_change_and_restored_by_a_new_daemon()
    {
        string file = Path.Combine(Path.GetTempPath(), $"norman-policy-{Guid.NewGuid():N}.rules");
        try
        {
            var first = new PolicyStore(_wire.Engine, _wire.Names, file);
            first.Add(Chain.Egress, FilterRuleParser.Words("app bobapp drop"));
            first.Add(Chain.Ingress, FilterRuleParser.Words("pcap \"udp port 53\" reject"));
            first.AddSet("blocked", "ipv4_addr", ["203.0.113.7", "203.0.113.9"]);
            first.Add(Chain.Ingress, FilterRuleParser.Words("ip saddr @blocked drop"));
            first.AddSet("blocked6", "ipv6_addr", ["2001:db8::7", "2001:db8:1::/48"]);
            first.Add(Chain.Ingress, FilterRuleParser.Words("ip6 saddr @blocked6 drop"));
            first.SetPolicy(Chain.Ingress, FilterAction.Drop);

            var restored = new PolicyStore(_wire.Engine, _wire.Names, file);
            Assert.Equal(first.Save(), restored.Save());
            Assert.Equal(FilterAction.Drop, restored.List().IngressPolicy);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void A_policy_that_cannot_be_saved_is_in_force_and_the_error_says_so()
    {
        // A file under /dev/null: its directory can never be made, whoever runs the test.
        var store = new PolicyStore(_wire.Engine, _wire.Names, "/dev/null/norman/policy.rules");
        var error = Assert.Throws<IOException>(() => store.Add(Chain.Ingress, FilterRuleParser.Words("udp dport 80 drop")));
        Assert.Contains("in force but could not be saved to /dev/null/norman/policy.rules", error.Message);
        Assert.Single(store.List().Rules);
        _wire.Engine.DoWork(); // the dataplane takes the published policy at its next batch
        Assert.Single(_wire.Engine.Policy.Ingress);
    }

    [Fact]
    public void A_bad_policy_file_is_refused_with_its_line_and_the_policy_in_force_stays()
    {
        Rule("ingress", "udp dport 80 drop");
        var before = _policy.Save();
        var error = Assert.Throws<FormatException>(() => _policy.Restore(["policy ingress drop", "add ingress udp dport 80 frobnicate"], "test.rules"));
        Assert.StartsWith("test.rules:2:", error.Message);
        Assert.Throws<FormatException>(() => _policy.Restore(["add ingress pcap \"port eleventy\" drop"], "test.rules"));
        Assert.Equal(before, _policy.Save());
    }

    [Fact]
    public void A_dscp_match_takes_the_packets_that_carry_it_and_its_rules_are_not_cached_per_flow()
    {
        var app = _wire.Bind(5000);
        Rule("ingress", "dscp af41 drop");
        foreach (byte tos in new byte[] { 34 << 2, 0, 34 << 2 | 1 }) // AF41; best effort; AF41 with an ECN bit
        {
            var frame = new byte[14 + 28 + 4];
            Norman.Core.Packets.EthernetHeader.Write(frame, _wire.Engine.Host.Mac, _wire.Peer.Mac, Norman.Core.Packets.EtherTypes.IPv4);
            Norman.Core.Packets.UdpPacketBuilder.WriteHeaders(frame.AsSpan(14), EngineHarness.PeerAddress, 40000, EngineHarness.HostAddress, 5000, 4, tos: tos);
            _wire.Peer.SendFrame(frame);
        }
        _wire.Breathe();
        Assert.Single(app.ReceiveAll());
        Assert.Equal(2, RuleCount(0));
        Assert.Equal("ip dscp af41 drop", _policy.List().Rules[0].Rule.ToString());
        Assert.False(_wire.Engine.Policy.IsCacheable(Chain.Ingress));
    }
}
