using System.Diagnostics;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>
/// An application whose TX pipe was full asks to be woken when there is room (a program waiting for EPOLLOUT): the
/// dataplane wakes it once half the pipe has left on the wire, once per request, and not before.
/// </summary>
public sealed class TxRoomTests
{
    [Fact]
    public void A_full_pipe_whose_application_asked_for_room_is_woken_once_half_of_it_has_left()
    {
        const int Slots = 8;
        using var wire = new EngineHarness(lineRate: 10_000_000, slotCount: Slots);
        wire.ResolvePeer();
        var app = wire.Bind(5000);
        for (int i = 0; i < Slots; i++)
        {
            app.Send(new byte[1000], EngineHarness.HostAddress, 5000, EngineHarness.PeerAddress, 9);
        }
        Assert.True(app.Tx.AskForRoom());
        var counters = app.Socket.Pipe.Counters;
        long wakeupsBefore = counters.Wakeups;

        // The wire's clock, a millisecond a breath: 10 Mbit/s takes about one 1,000-byte datagram a millisecond.
        long now = Stopwatch.GetTimestamp();
        int breaths = 0;
        while (counters.Wakeups == wakeupsBefore && breaths < 1000)
        {
            now += Stopwatch.Frequency / 1000;
            wire.Engine.DoWork(now);
            breaths++;
            if (counters.Wakeups == wakeupsBefore)
            {
                Assert.False(app.Tx.HasRoom()); // no wake-up while more than half is still waiting
            }
        }
        Assert.Equal(wakeupsBefore + 1, counters.Wakeups);
        Assert.True(app.Tx.HasRoom());
        Assert.InRange(app.Socket.TxQueued, 1, Slots / 2); // woken as soon as half was free, not once it was empty

        // The request was taken: draining the rest wakes no one again.
        for (int i = 0; i < 50; i++)
        {
            now += Stopwatch.Frequency / 1000;
            wire.Engine.DoWork(now);
        }
        Assert.Equal(Slots, wire.Peer.ReceivedUdpPackets);
        Assert.Equal(wakeupsBefore + 1, counters.Wakeups);
    }
}
