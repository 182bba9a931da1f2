using Norman.Client.Tcp;
using Norman.Core.Packets;

namespace Norman.Client.Tests.Tcp;

/// <summary>
/// A receiver that holds its window shut (RFC 9293 §3.8.6.1, RFC 1122 §4.2.2.17): the connection probes it for as
/// long as it answers, never spends a byte it would discard, and sends at once when the window opens.
/// </summary>
public sealed class ZeroWindowTests
{
    private readonly ScriptedPeer _peer = new();
    private readonly byte[] _data = Enumerable.Range(0, 20_000).Select(i => (byte)i).ToArray();

    public ZeroWindowTests() => _peer.Establish();

    /// <summary>The peer takes the first flight and shuts its window with its acknowledgement of it.</summary>
    private uint ShutAfterFirstFlight()
    {
        _peer.Write(_data);
        var flight = _peer.Take();
        Assert.NotEmpty(flight);
        uint acknowledged = flight.Max(s => s.Sequence + (uint)s.Payload.Length);
        _peer.Send(TcpHeader.Ack, _peer.PeerNext, acknowledged, 0);
        Assert.Empty(_peer.Take());
        return acknowledged;
    }

    [Fact]
    public void A_shut_window_answered_for_half_an_hour_is_probed_all_along_and_the_connection_stays()
    {
        uint unacknowledged = ShutAfterFirstFlight();
        int probes = 0;
        for (var elapsed = TimeSpan.Zero; elapsed < TimeSpan.FromMinutes(30); elapsed += TimeSpan.FromSeconds(1))
        {
            _peer.Advance(TimeSpan.FromSeconds(1));
            foreach (var probe in _peer.Take())
            {
                // One below SND.UNA, no data: the receiver answers with its window and discards nothing.
                Assert.Equal(TcpHeader.Ack, probe.Flags);
                Assert.Equal(unacknowledged - 1, probe.Sequence);
                Assert.Empty(probe.Payload);
                probes++;
                _peer.Send(TcpHeader.Ack, _peer.PeerNext, unacknowledged, 0);
            }
        }
        Assert.Equal(TcpState.Established, _peer.Connection.State);
        // Backed off to two minutes: about 15 probes in the first half hour, not one a second.
        Assert.InRange(probes, 15, 40);
    }

    [Fact]
    public void When_the_window_opens_the_next_bytes_leave_at_once_from_snd_una()
    {
        uint unacknowledged = ShutAfterFirstFlight();
        _peer.Advance(TimeSpan.FromSeconds(30));
        _peer.Take();

        _peer.Send(TcpHeader.Ack, _peer.PeerNext, unacknowledged, 65535);

        var resumed = _peer.Take();
        Assert.NotEmpty(resumed);
        Assert.Equal(unacknowledged, resumed[0].Sequence);
        Assert.Equal(_data.AsSpan((int)(unacknowledged - _peer.OurNext), resumed[0].Payload.Length).ToArray(), resumed[0].Payload);
    }

    [Fact]
    public void A_receiver_that_never_answers_its_probes_is_given_up_with_a_reset()
    {
        ShutAfterFirstFlight();
        _peer.Advance(TimeSpan.FromHours(2));

        var sent = _peer.Take();
        Assert.Equal(TcpLimits.MaximumUnansweredProbes, sent.Count(s => s.Flags == TcpHeader.Ack));
        Assert.True(sent[^1].Has(TcpHeader.Rst));
        Assert.Equal(TcpState.Closed, _peer.Connection.State);
    }

    [Fact]
    public void A_window_shut_with_data_in_flight_is_probed_and_its_timeouts_never_count_as_retransmissions()
    {
        _peer.Write(_data);
        var flight = _peer.Take();
        uint firstEnd = flight[0].Sequence + (uint)flight[0].Payload.Length;
        // Only the first segment is acknowledged, and the window shuts: the rest is in flight to a shut receiver.
        _peer.Send(TcpHeader.Ack, _peer.PeerNext, firstEnd, 0);
        for (int second = 0; second < 20 * 60; second++)
        {
            _peer.Advance(TimeSpan.FromSeconds(1));
            foreach (var probe in _peer.Take().Where(s => s.Payload.Length == 0 && !s.Has(TcpHeader.Rst)))
            {
                _peer.Send(TcpHeader.Ack, _peer.PeerNext, firstEnd, 0);
            }
        }
        Assert.Equal(TcpState.Established, _peer.Connection.State);
    }
}
