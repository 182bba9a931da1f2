using System.Diagnostics;
using Norman.Client.Tcp;
using Norman.Core.Packets;

namespace Norman.Client.Tests.Tcp;

/// <summary>A segment the connection sent, as the peer reads it.</summary>
internal sealed record SentSegment(uint Sequence, uint Acknowledgement, byte Flags, ushort Window, byte[] Payload, int OptionsLength, byte[] Options)
{
    /// <summary>The options as a stack reads them (timestamps above all).</summary>
    public TcpOptions.Offered ReadOptions() => TcpOptions.Read(Options);

    /// <summary>The SACK blocks the segment carries.</summary>
    public (uint Left, uint Right)[] SackBlocks()
    {
        var blocks = new (uint, uint)[4];
        return blocks[..TcpOptions.ReadSack(Options, blocks)];
    }

    public bool Has(byte flag) => (Flags & flag) != 0;

    public override string ToString() =>
        $"{FlagNames(Flags)} seq {Sequence} ack {Acknowledgement} win {Window} len {Payload.Length}";

    public static string FlagNames(byte flags) =>
        string.Join('|', new[] { (TcpHeader.Syn, "SYN"), (TcpHeader.Ack, "ACK"), (TcpHeader.Fin, "FIN"), (TcpHeader.Rst, "RST"), (TcpHeader.Psh, "PSH") }
            .Where(f => (flags & f.Item1) != 0).Select(f => f.Item2));
}

/// <summary>
/// The other end of one <see cref="TcpConnection"/>, played by a test as smoltcp's tests play it: the connection's
/// carrier, recording every segment it sends, and a clock the test moves (no threads, no processes, no sleeps).
/// Segments go in through <see cref="Send"/>; what came out is taken with <see cref="Take"/>.
/// </summary>
internal sealed class ScriptedPeer : ITcpCarrier
{
    public static readonly NetAddress Local = NetAddress.Parse("198.18.0.1");
    public static readonly NetAddress Remote = NetAddress.Parse("198.18.0.2");
    public const ushort LocalPortNumber = 7000;
    public const ushort RemotePort = 40000;
    /// <summary>The peer's initial sequence number.</summary>
    public const uint PeerIss = 1_000_000;

    private readonly List<SentSegment> _sent = new();
    private readonly ChallengeAckBudget _challengeAcks = new();

    public ScriptedPeer()
    {
        Connection = new TcpConnection(this, Remote, RemotePort);
    }

    /// <summary>The other end of a connection made by <paramref name="make"/> (one resumed from a handover), the clock at <paramref name="now"/>.</summary>
    public ScriptedPeer(Func<ScriptedPeer, TcpConnection> make, long now)
    {
        Now = now;
        Connection = make(this);
    }

    public TcpConnection Connection { get; }

    /// <summary>The fake clock, in Stopwatch ticks; it starts at an arbitrary second.</summary>
    public long Now { get; private set; } = Stopwatch.Frequency * 1000;

    /// <summary>Connections handed to the application (passive opens), and those forgotten (closed).</summary>
    public int AcceptedCount { get; private set; }
    public int Forgotten { get; private set; }

    /// <summary>Whether the connection asked to be served (an application thread's Wake).</summary>
    public bool Woken { get; set; }

    public NetAddress LocalAddressFor(NetAddress remote) => Local;
    public ushort LocalPort => LocalPortNumber;
    public int WindowCap { get; set; } = 128 * TcpConnection.OurMss;

    /// <summary>The sequence numbers once established: ours (the connection's SND.NXT at the end of the handshake) and the peer's next.</summary>
    public uint OurNext { get; private set; }
    public uint PeerNext { get; set; } = PeerIss + 1;

    public bool Transmit(TcpConnection connection, TcpSegmentFields fields, ReadOnlySpan<byte> options, int payloadOffset, int payloadLength)
    {
        var payload = new byte[payloadLength];
        connection.CopyPayload(payloadOffset, payload);
        _sent.Add(new SentSegment(fields.Sequence, fields.Acknowledgement, fields.Flags, fields.Window, payload, options.Length, options.ToArray()));
        return true;
    }

    public void Wake(TcpConnection connection) => Woken = true;

    public void Timed(TcpConnection connection)
    {
    }

    public void Accepted(TcpConnection connection) => AcceptedCount++;

    public void Forget(TcpConnection connection) => Forgotten++;

    public bool TakeChallengeAck(long now) => _challengeAcks.Take(now);

    public TcpCongestionControl CongestionControl { get; set; } = TcpCongestionControl.Cubic;

    /// <summary>A passive open as a listener makes one, completed: our SYN-ACK acknowledged. Returns the SYN-ACK.</summary>
    /// <remarks>With <paramref name="timestamp"/>, the SYN (and the ACK after) carries the timestamps option with that TSval.</remarks>
    public SentSegment Establish(ushort mss = 1460, int windowScale = 7, ushort window = 65535, uint? timestamp = null, bool sackPermitted = false)
    {
        Connection.Accept(new TcpSegment { Sequence = PeerIss, Flags = TcpHeader.Syn, Window = window, Mss = mss, WindowScale = windowScale,
            HasTimestamps = timestamp.HasValue, TimestampValue = timestamp ?? 0, SackPermitted = sackPermitted }, Now);
        var synAck = Take().Single();
        Assert.Equal(TcpHeader.Syn | TcpHeader.Ack, synAck.Flags);
        OurNext = synAck.Sequence + 1;
        Send(TcpHeader.Ack, PeerNext, OurNext, window, timestamp: timestamp, echo: synAck.ReadOptions().TimestampValue);
        Assert.Equal(TcpState.Established, Connection.State);
        Assert.Empty(Take());
        return synAck;
    }

    /// <summary>Delivers a segment to the connection.</summary>
    public void Send(byte flags, uint sequence, uint acknowledgement, ushort window, byte[]? payload = null, ushort mss = 0, int windowScale = -1,
        uint? timestamp = null, uint echo = 0)
    {
        Connection.OnSegment(new TcpSegment
        {
            Sequence = sequence,
            Acknowledgement = acknowledgement,
            Flags = flags,
            Window = window,
            Payload = payload ?? [],
            Mss = mss,
            WindowScale = windowScale,
            HasTimestamps = timestamp.HasValue,
            TimestampValue = timestamp ?? 0,
            TimestampEcho = echo,
        }, Now);
    }

    /// <summary>The application's bytes, put into the send buffer and served as the endpoint's loop would.</summary>
    public void Write(byte[] data)
    {
        Assert.True(Connection.WriteAsync(data, CancellationToken.None).IsCompletedSuccessfully, "the send buffer had no room");
        Serve();
    }

    /// <summary>What the endpoint's loop does when the connection asked for service.</summary>
    public void Serve()
    {
        Woken = false;
        Connection.Service(Now);
    }

    /// <summary>Moves the clock on and runs the connection's timers, in steps of a millisecond at most as the loop would.</summary>
    public void Advance(TimeSpan by)
    {
        long end = Now + (long)(by.TotalSeconds * Stopwatch.Frequency);
        long step = Stopwatch.Frequency / 1000;
        while (Now < end)
        {
            long next = NextTimer();
            Now = next > Now && next <= end ? next : Math.Min(end, Now + step * 1000);
            if (Connection.HasTimers)
            {
                Connection.OnTimers(Now);
            }
        }
    }

    /// <summary>The earliest timer the connection has running; 0 for none.</summary>
    private long NextTimer() =>
        new[] { Connection.RetransmitAt, Connection.DelayedAckAt, Connection.CloseAt, Connection.ProbeAt }.Where(t => t != 0).DefaultIfEmpty(0).Min();

    /// <summary>Everything the connection sent since the last call.</summary>
    public List<SentSegment> Take()
    {
        var taken = _sent.ToList();
        _sent.Clear();
        return taken;
    }

    /// <summary>Everything the application may read now.</summary>
    public byte[] Read()
    {
        var buffer = new byte[TcpConnection.BufferLimit];
        var read = Connection.ReadAsync(buffer, CancellationToken.None);
        Assert.True(read.IsCompleted, "nothing to read");
        return buffer[..read.Result];
    }
}
