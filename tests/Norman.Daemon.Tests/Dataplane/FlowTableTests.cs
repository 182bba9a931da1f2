using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Tests.Dataplane;

public sealed class FlowTableTests
{
    private static FlowKey Key(int i) =>
        new(IpProtocols.Udp, NetAddress.FromV4(0xC612_0001), (ushort)(i & 0xFFFF), NetAddress.FromV4(0x0A00_0000u + (uint)(i >> 16)), (ushort)(i * 7));

    [Fact]
    public void Holds_a_million_flows_and_finds_each_one()
    {
        var table = new FlowTable();
        const int Flows = 1_000_000;
        for (int i = 0; i < Flows; i++)
        {
            table.Set(Key(i), i);
        }
        Assert.Equal(Flows, table.Count);
        for (int i = 0; i < Flows; i++)
        {
            Assert.True(table.TryGet(Key(i), out int value));
            Assert.Equal(i, value);
        }
        Assert.False(table.TryGet(Key(Flows + 1), out _));
        Assert.InRange(table.BytesAllocated / Flows, 1, 128);
    }

    [Fact]
    public void Random_adds_and_removes_agree_with_a_dictionary()
    {
        var table = new FlowTable(16);
        var model = new Dictionary<FlowKey, int>();
        var random = new Random(42);
        for (int step = 0; step < 200_000; step++)
        {
            var key = Key(random.Next(5000));
            if (random.Next(3) == 0)
            {
                Assert.Equal(model.Remove(key), table.Remove(key));
            }
            else
            {
                model[key] = step;
                table.Set(key, step);
            }
            if (step % 1000 == 0)
            {
                foreach (var (k, v) in model)
                {
                    Assert.True(table.TryGet(k, out int found));
                    Assert.Equal(v, found);
                }
            }
        }
        Assert.Equal(model.Count, table.Count);
    }
}
