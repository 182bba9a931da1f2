using Norman.Core.Packets;
using Norman.Core.Pipes;

namespace Norman.Core.Tests.Pipes;

/// <summary>A TCP socket's connection table is the application's memory: the daemon reads it as hostile.</summary>
public sealed unsafe class ConnectionTableTests
{
    [Fact]
    public void A_count_past_the_capacity_reads_as_the_capacity_and_records_no_stack_writes_are_left_out()
    {
        var memory = new byte[ConnectionTable.Bytes];
        fixed (byte* table = memory)
        {
            for (int i = 0; i < ConnectionTable.Capacity; i++)
            {
                // Every third record is garbage: a state past TIME-WAIT, or no remote port.
                var record = (i % 3) switch
                {
                    0 => new ConnectionTable.Record(NetAddress.FromV4(0x0A000001), (ushort)(i + 1), 3, 10, 20),
                    1 => new ConnectionTable.Record(NetAddress.FromV4(0x0A000001), (ushort)(i + 1), 0xFF, 0, 0),
                    _ => new ConnectionTable.Record(NetAddress.FromV4(0x0A000001), 0, 3, 0, 0),
                };
                ConnectionTable.Write(table, i, record);
            }
            ConnectionTable.Publish(table, -1);

            var read = ConnectionTable.Read(table);

            Assert.Equal((ConnectionTable.Capacity + 2) / 3, read.Count);
            Assert.All(read, r => Assert.True(r.State == 3 && r.RemotePort != 0 && r.SendQueue == 10));
        }
    }
}
