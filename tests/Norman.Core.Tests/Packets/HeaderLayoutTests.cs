using System.Runtime.CompilerServices;
using Norman.Core.Packets;
using Norman.Core.Pipes;

namespace Norman.Core.Tests.Packets;

public class HeaderLayoutTests
{
    [Fact]
    public void Header_structs_are_exactly_their_wire_size()
    {
        Assert.Equal(14, Unsafe.SizeOf<EthernetHeader>());
        Assert.Equal(4, Unsafe.SizeOf<VlanTag>());
        Assert.Equal(28, Unsafe.SizeOf<ArpPacket>());
        Assert.Equal(20, Unsafe.SizeOf<Ipv4Header>());
        Assert.Equal(40, Unsafe.SizeOf<Ipv6Header>());
        Assert.Equal(8, Unsafe.SizeOf<IcmpHeader>());
        Assert.Equal(8, Unsafe.SizeOf<UdpHeader>());
        Assert.Equal(20, Unsafe.SizeOf<TcpHeader>());
    }

    [Fact]
    public void Pipe_layout_keeps_each_side_on_its_own_lines()
    {
        Assert.Equal(0, PipeLayout.ProducerIndexOffset);
        Assert.Equal(128, PipeLayout.ConsumerIndexOffset);
        Assert.Equal(PipeLayout.ConsumerIndexOffset + 4, PipeLayout.NeedsWakeupOffset);
        Assert.Equal(384, PipeLayout.SlotsOffset);
        Assert.Equal(0, PipeLayout.SlotsOffset % 64);
        Assert.Equal(384 + 1024L * 2048, PipeLayout.RingBytes(1024, 2048));
        Assert.Equal(4096 + 2 * 1024L * 2048, PipeLayout.SocketRegionBytes(1024, 2048)); // both headers in the first page
        Assert.True(PipeLayout.TxRingOffset + PipeLayout.SlotsOffset <= PipeLayout.RxSlotsOffset);
    }

    [Theory]
    [InlineData("198.18.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("2001:db8::1")]
    public void Addresses_round_trip_through_text(string text) => Assert.Equal(text, NetAddress.Parse(text).ToString());

    [Fact]
    public void Mac_addresses_round_trip_and_new_ones_are_local_unicast()
    {
        Assert.Equal("02:00:5e:10:00:ff", MacAddress.Parse("02:00:5e:10:00:ff").ToString());
        var mac = MacAddress.NewLocal();
        Assert.Equal(0x02, (int)(mac.Value >> 40) & 0x03);
    }
}
