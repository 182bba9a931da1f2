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
}
