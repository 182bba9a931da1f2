using Norman.Core.Packets;

namespace Norman.Core.Tests.Packets;

/// <summary>Which of a host's IPv6 addresses a packet leaves from: the daemon and the client library both ask this.</summary>
public sealed class SourceChoice6Tests
{
    private static readonly (NetAddress, int)[] Host =
    [
        (NetAddress.Parse("2001:db8:1::1"), 64),
        (NetAddress.Parse("fe80::ff:fe00:1"), 64),
        (NetAddress.Parse("2001:db8:2::1"), 64),
    ];

    [Theory]
    [InlineData("2001:db8:1::2", "2001:db8:1::1")]   // in the main prefix
    [InlineData("2001:db8:2::2", "2001:db8:2::1")]   // in the second one: its own address, as the peer expects the answer from it
    [InlineData("2001:db8:99::2", "2001:db8:1::1")]  // off the link (through a gateway): the main one
    [InlineData("fe80::1", "fe80::ff:fe00:1")]       // link-local: the link-local one, never a global one
    public void A_destination_gets_the_address_of_its_scope_and_prefix_else_the_main_one(string destination, string source) =>
        Assert.Equal(NetAddress.Parse(source), SourceChoice6.Choose(Host, NetAddress.Parse(destination)));

    [Fact]
    public void Without_a_link_local_address_a_link_local_destination_gets_the_main_one_and_without_any_none()
    {
        Assert.Equal(NetAddress.Parse("2001:db8:1::1"), SourceChoice6.Choose([Host[0]], NetAddress.Parse("fe80::1")));
        Assert.Null(SourceChoice6.Choose([], NetAddress.Parse("2001:db8:1::2")));
    }

    [Theory]
    [InlineData("fd66::1", "fd66::ffff", 64, true)]
    [InlineData("fd66::1", "fd66:0:0:1::1", 64, false)]
    [InlineData("fd66::1", "fd66::2", 127, false)]
    [InlineData("fd66::1", "fd66::0", 127, true)]
    [InlineData("fd66::1", "2001:db8::1", 0, true)]
    public void Prefixes_compare_the_bits_they_cover(string a, string b, int prefixLength, bool same) =>
        Assert.Equal(same, NetAddress.Parse(a).SharesPrefix6(NetAddress.Parse(b), prefixLength));
}
