using Norman.Daemon.Dataplane.Ports.Xdp;

namespace Norman.Daemon.Tests.Dataplane.Xdp;

public sealed class XdpPortSpecificationTests
{
    [Theory]
    [InlineData("eth1", "eth1", null)]
    [InlineData("eth1:2", "eth1", "2")]
    [InlineData("eth1:0-3", "eth1", "0,1,2,3")]
    [InlineData("eth1:3,0,2-3", "eth1", "0,2,3")]
    public void A_port_names_its_interface_and_every_queue_or_some(string specification, string device, string? queues)
    {
        var (parsedDevice, parsedQueues) = XdpPort.Parse(specification);
        Assert.Equal(device, parsedDevice);
        Assert.Equal(queues, parsedQueues is null ? null : string.Join(",", parsedQueues));
    }

    [Theory]
    [InlineData("eth1:")]
    [InlineData("eth1:x")]
    [InlineData("eth1:3-1")]
    [InlineData("eth1:-1")]
    [InlineData("eth1:0-5000")]
    public void A_bad_queue_list_is_refused_saying_how_to_write_one(string specification)
    {
        var error = Assert.Throws<ArgumentException>(() => XdpPort.Parse(specification));
        Assert.Contains("xdp:eth1:0-3", error.Message);
    }
}
