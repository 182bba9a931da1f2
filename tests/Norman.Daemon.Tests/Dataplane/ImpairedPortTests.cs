using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Tests.Dataplane;

public sealed class ImpairedPortTests
{
    /// <summary>The wire behind the bad cable: remembers what it was given, has nothing to receive.</summary>
    private sealed class RecordingPort : IPort
    {
        public List<byte> Sent { get; } = new();
        public string Name => "recording";
        public int Receive(PacketBatch batch, long now) => 0;
        public long TransmitBudget(long now) => long.MaxValue;

        public int Transmit(PacketBatch batch, long now)
        {
            for (int i = 0; i < batch.Count; i++)
            {
                Sent.Add(batch.Frame(i)[0]);
            }
            return 0;
        }

        public void Dispose()
        {
        }
    }

    /// <summary>
    /// The engine calls Transmit only when it has something to send. A frame held back must still leave within a
    /// couple of breaths when nothing follows it: the last ACK of a quiet connection held until the peer's next
    /// timeout (up to a minute, after backoff) stalled transfers over the bad cable.
    /// </summary>
    [Fact]
    public void A_frame_held_back_leaves_two_breaths_later_even_when_nothing_follows_it()
    {
        var wire = new RecordingPort();
        var cable = new ImpairedPort(wire, new WireImpairment(0, 0, 0.5, seed: 3), new WireImpairment(0, 0, 0));
        var batch = new PacketBatch();
        byte frame = 0;
        while (cable.Outgoing.HeldBack == 0)
        {
            batch.Clear();
            batch.NextBuffer()[0] = ++frame;
            batch.Append(60);
            cable.Transmit(batch, 0);
        }
        Assert.DoesNotContain(frame, wire.Sent);

        var received = new PacketBatch();
        cable.Receive(received, 0);
        cable.Receive(received, 0);
        Assert.Contains(frame, wire.Sent);
        Assert.Equal(Enumerable.Range(1, frame).Select(i => (byte)i).Order(), wire.Sent.Order());
    }

    [Fact]
    public void With_a_delay_each_frame_leaves_that_long_after_it_was_sent_in_order_and_the_dataplane_only_naps()
    {
        var wire = new RecordingPort();
        const long delay = 20_000;
        var cable = new ImpairedPort(wire, new WireImpairment(0, 0, 0), new WireImpairment(0, 0, 0), delayTicks: delay);
        var batch = new PacketBatch();
        for (byte frame = 1; frame <= 3; frame++)
        {
            batch.Clear();
            batch.NextBuffer()[0] = frame;
            batch.Append(60);
            cable.Transmit(batch, now: frame * 1000L);
        }
        Assert.Empty(wire.Sent);
        Assert.Equal(SleepAllowance.Briefly, cable.PrepareToSleep(0)); // frames on the cable: nothing will signal them

        var received = new PacketBatch();
        cable.Receive(received, now: 1000 + delay - 1);
        Assert.Empty(wire.Sent);
        cable.Receive(received, now: 2000 + delay);
        Assert.Equal([1, 2], wire.Sent);
        cable.Receive(received, now: 3000 + delay);
        Assert.Equal([1, 2, 3], wire.Sent);
        Assert.Equal(SleepAllowance.Briefly, cable.PrepareToSleep(0)); // the recording wire has no descriptor: brief anyway
    }
}
