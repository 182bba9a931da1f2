using Norman.Core.Memory;

namespace Norman.Core.Tests.Memory;

public sealed class PacketCopyTests
{
    [Fact]
    public void Every_length_is_copied_exactly_and_nothing_past_it_is_touched()
    {
        var random = new Random(7);
        for (int length = 0; length <= 200; length++)
        {
            var source = new byte[length + 40];
            random.NextBytes(source);
            var destination = new byte[length + 40];
            Array.Fill(destination, (byte)0xEE);
            PacketCopy.To(source.AsSpan(3, length), destination.AsSpan(5));
            Assert.True(source.AsSpan(3, length).SequenceEqual(destination.AsSpan(5, length)), $"length {length}");
            Assert.All(destination[..5], b => Assert.Equal(0xEE, b));
            Assert.All(destination[(5 + length)..], b => Assert.Equal(0xEE, b));
        }
    }

    [Fact]
    public void A_packet_longer_than_its_room_is_refused()
    {
        Assert.Throws<ArgumentException>(() => PacketCopy.To(new byte[48], new byte[47]));
    }
}
