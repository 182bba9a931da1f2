using System.Buffers.Text;
using System.Diagnostics;
using System.Text;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// The simulated peer's client load: requests paced at a rate on the wire's clock, each tagged "#N ", and the round
/// trip of each tagged answer, timed when the answer reaches the wire's far end. Runs on the dataplane thread without
/// allocating; the round trips are kept in a fixed array that another thread reads behind a published count.
/// </summary>
public sealed class RequestStream
{
    private const int MaxSamples = 1 << 20;
    private const int InFlight = 1 << 16;

    private long[] _sentAt = [];
    private long[] _roundTrips = [];
    private long[] _answeredSequences = [];
    private byte[] _request = [];
    private double _perTick;
    private double _credit;
    private long _last;
    private long _sequence;
    private long _answered;
    private int _taken;

    /// <summary>
    /// The port requests go to and answers come from; 0 before the first start. It stays after a stop, so that
    /// answers still on their way are counted here and not taken for other traffic.
    /// </summary>
    public ushort Port { get; private set; }

    /// <summary>Requests are being sent (a rate above 0).</summary>
    public bool Active => _perTick > 0;

    public void Start(ushort port, string request, double perSecond)
    {
        if (_roundTrips.Length == 0)
        {
            // Only a peer that is asked for a request stream pays for its memory (16 MiB of samples).
            _sentAt = new long[InFlight];
            _roundTrips = new long[MaxSamples];
            _answeredSequences = new long[MaxSamples];
        }
        _request = Encoding.ASCII.GetBytes(request);
        _credit = 0;
        _last = 0;
        _perTick = Math.Max(0, perSecond) / Stopwatch.Frequency;
        Port = port;
    }

    /// <summary>True when a request is due now (at most a millisecond's worth is saved up).</summary>
    public bool Due(long now)
    {
        if (_perTick == 0)
        {
            return false;
        }
        if (_last != 0)
        {
            _credit = Math.Min(_credit + (now - _last) * _perTick, Math.Max(1, _perTick * Stopwatch.Frequency / 1000));
        }
        _last = now;
        return _credit >= 1;
    }

    /// <summary>Writes the next request frame into <paramref name="frame"/>; returns its length.</summary>
    public int Write(Span<byte> frame, long now, SimulatedPeer peer)
    {
        _credit--;
        long sequence = _sequence++;
        _sentAt[sequence & (InFlight - 1)] = now;
        Span<byte> payload = stackalloc byte[24 + _request.Length];
        payload[0] = (byte)'#';
        Utf8Formatter.TryFormat(sequence, payload[1..], out int digits);
        payload[1 + digits] = (byte)' ';
        _request.CopyTo(payload[(2 + digits)..]);
        return peer.BuildUdp(frame, 40001, peer.HostAddress, Port, payload[..(2 + digits + _request.Length)]);
    }

    /// <summary>An answer came back: its tag says which request it answers.</summary>
    public void Answered(ReadOnlySpan<byte> payload, long now)
    {
        if (payload.Length < 2 || payload[0] != (byte)'#' || !Utf8Parser.TryParse(payload[1..], out long sequence, out _)
            || sequence >= _sequence || _sequence - sequence > InFlight)
        {
            return;
        }
        long answered = _answered;
        if (answered < MaxSamples)
        {
            _roundTrips[answered] = now - _sentAt[sequence & (InFlight - 1)];
            _answeredSequences[answered] = sequence;
            Volatile.Write(ref _answered, answered + 1); // the sample first, then the count that publishes it
        }
    }

    /// <summary>
    /// The round trips (µs) answered since the last call, with the number of the request each answers, and how many
    /// requests were sent in all (the next request's number).
    /// </summary>
    public (double[] Microseconds, long[] Requests, long Sent) Take()
    {
        long answered = Volatile.Read(ref _answered);
        var samples = new double[answered - _taken];
        var requests = new long[samples.Length];
        for (int i = 0; i < samples.Length; i++)
        {
            samples[i] = _roundTrips[_taken + i] * 1e6 / Stopwatch.Frequency;
            requests[i] = _answeredSequences[_taken + i];
        }
        _taken = (int)answered;
        return (samples, requests, Volatile.Read(ref _sequence));
    }
}
