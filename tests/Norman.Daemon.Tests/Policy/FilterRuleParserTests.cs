using Norman.Core.Packets;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Tests.Policy;

public sealed class FilterRuleParserTests
{
    private static FilterRule Parse(string line) => FilterRuleParser.Parse(Chain.Ingress, FilterRuleParser.Words(line));

    [Theory]
    [InlineData("udp dport 80 drop")]
    [InlineData("app bobapp drop")]
    [InlineData("ip saddr 198.18.0.0/24 udp dport 5000-6000 accept")]
    [InlineData("ip daddr 198.18.0.1/32 tcp sport 1024-65535 reject")]
    [InlineData("uid 1000 gid 100 pid 42 count")]
    [InlineData("pcap \"udp and greater 200\" drop")]
    [InlineData("icmp accept")]
    [InlineData("ct state established,related accept")]
    [InlineData("icmp type echo-request drop")]
    [InlineData("ip saddr @blocked drop")]
    [InlineData("ip6 saddr 2001:db8::/32 icmpv6 drop")]
    [InlineData("ip6 daddr 2001:db8:1::1/128 accept")]
    [InlineData("ip daddr @servers udp dport @web accept")]
    [InlineData("tcp flags syn / syn,ack drop")]
    [InlineData("length 1000- drop")]
    [InlineData("length 64-128 count")]
    [InlineData("cgroup /system.slice/kvdb.service drop")]
    [InlineData("udp dport 5000 limit rate over 100 packets/second burst 10 drop")]
    [InlineData("limit rate 1048576 bytes/second burst 65536 accept")]
    [InlineData("udp dport 53 log prefix \"dns\"")]
    [InlineData("udp ct state new,invalid drop")]
    [InlineData("drop")]
    public void A_rule_reads_back_as_it_was_written(string line) => Assert.Equal(line, Parse(line).ToString());

    [Fact]
    public void Rates_are_read_in_packets_or_bytes_per_second()
    {
        var rule = Parse("limit rate over 1 mbytes/second drop");
        Assert.Equal(1024 * 1024, rule.LimitRate);
        Assert.True(rule.LimitBytes);
        Assert.True(rule.LimitOver);
        Assert.Equal(60, Parse("limit rate 3600/minute accept").LimitRate);
    }

    [Fact]
    public void Fields_land_where_they_belong()
    {
        var rule = Parse("ip saddr 198.18.0.77/24 udp sport 53 dport 1000-2000 app kvdb reject");
        Assert.Equal(NetAddress.Parse("198.18.0.0"), rule.SourceNetwork);
        Assert.Equal(24, rule.SourcePrefix);
        Assert.Equal(IpProtocols.Udp, rule.Protocol);
        Assert.Equal((53, 53), ((int)rule.SourcePortLow, (int)rule.SourcePortHigh));
        Assert.Equal((1000, 2000), ((int)rule.DestinationPortLow, (int)rule.DestinationPortHigh));
        Assert.Equal("kvdb", rule.App);
        Assert.Equal(FilterAction.Reject, rule.Action);
    }

    [Theory]
    [InlineData("udp dport 80", "no action")]
    [InlineData("udp dport eighty drop", "'eighty'")]
    [InlineData("dport 80 drop", "Ports need a protocol")]
    [InlineData("ip saddr 300.1.1.1 drop", "'300.1.1.1'")]
    [InlineData("ip saddr 10.0.0.0/40 drop", "prefix length")]
    [InlineData("udp dport 90-80 drop", "low ≤ high")]
    [InlineData("drop udp", "nothing may follow")]
    [InlineData("frobnicate drop", "'frobnicate'")]
    [InlineData("app", "ends where a program's file name")]
    [InlineData("exe bin/redis drop", "an absolute path")]
    [InlineData("ct state open accept", "'open'")]
    [InlineData("ip6 saddr 198.18.0.1 drop", "an IPv6 address")]
    [InlineData("ip6 saddr 2001:db8::/129 drop", "0 to 128")]
    [InlineData("type echo-request drop", "needs the protocol")]
    [InlineData("tcp flags syn,push drop", "'push'")]
    [InlineData("limit rate 10/hour accept", "'hour'")]
    public void A_mistake_names_the_word_and_what_was_expected(string line, string expected)
    {
        var error = Assert.Throws<FormatException>(() => Parse(line));
        Assert.Contains(expected, error.Message);
    }
}
