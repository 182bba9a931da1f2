using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Daemon.Qos;
using Norman.Daemon.Tests.Dataplane;

namespace Norman.Daemon.Tests.Qos;

/// <summary>
/// A 1 Gbit/s virtual wire with QoS classes, driven on a clock of the test's own: each step advances time by
/// <see cref="StepTicks"/>, lets every sender offer what its rate allows (or fill its pipe, when it saturates), and
/// runs one breath. So rates are exact and repeatable, however busy the machine is.
/// </summary>
public sealed class QosWire : IDisposable
{
    public const long LineRate = 1_000_000_000;
    public const ushort SinkPort = 9000;
    /// <summary>A 1500-byte frame: 1524 bytes on the wire with preamble, FCS and gap.</summary>
    public const int Payload = 1500 - 14 - 28;
    public const int WireBytesPerFrame = 1500 + 24;
    public static readonly long StepTicks = Stopwatch.Frequency / 100_000; // 10 µs

    private readonly List<Sender> _senders = new();
    private readonly long _stepTicks;

    /// <param name="stepTicks">Wire time between breaths; <see cref="StepTicks"/> (10 µs) unless a test needs finer.</param>
    public QosWire(long lineRate = LineRate, long stepTicks = 0)
    {
        _stepTicks = stepTicks > 0 ? stepTicks : StepTicks;
        // Breathing once a step, the wire needs a step's worth of frames queued ahead of it to stay busy.
        Wire = new EngineHarness(lineRate, slotCount: 256, wireQueueTicks: 2 * _stepTicks);
        Wire.ResolvePeer();
        Wire.Peer.KeepDatagrams = false;
        Wire.Peer.SinkOnPort(SinkPort);
        Store = new QosStore(Wire.Engine, Wire.Names) { LineRateBits = lineRate };
        Now = Stopwatch.GetTimestamp();
    }

    public EngineHarness Wire { get; }
    public QosStore Store { get; }
    public long Now { get; private set; }

    /// <summary>A sending application: saturating (rate 0) or offering <paramref name="wireBitsPerSecond"/>.</summary>
    public Sender AddSender(ushort port, string app, long wireBitsPerSecond = 0, int payload = Payload)
    {
        var sender = new Sender(Wire.Bind(port, app: app), wireBitsPerSecond, payload);
        _senders.Add(sender);
        return sender;
    }

    /// <summary>Runs <paramref name="seconds"/> of wire time; every <paramref name="sampleEvery"/> steps each sender's sent bytes are sampled.</summary>
    public void Run(double seconds, int sampleEvery = 1000)
    {
        long steps = (long)(seconds * Stopwatch.Frequency / _stepTicks);
        // Never behind the real clock: binding a socket breathes on it, and what left the port then is on the wire
        // (and in every token bucket) in real time. From here on the wire's time is the test's own.
        Now = Math.Max(Now, Stopwatch.GetTimestamp());
        foreach (var sender in _senders.Where(s => s.Samples.Count == 0))
        {
            sender.Samples.Add(sender.SentWireBytes); // sample k is taken k × sampleEvery steps after the start
        }
        for (long step = 1; step <= steps; step++)
        {
            Now += _stepTicks;
            foreach (var sender in _senders)
            {
                sender.Offer(Now);
            }
            Wire.Engine.DoWork(Now);
            if (step % sampleEvery == 0)
            {
                foreach (var sender in _senders)
                {
                    sender.Samples.Add(sender.SentWireBytes);
                }
            }
        }
    }

    public void Dispose()
    {
        Store.Dispose();
        Wire.Dispose();
    }

    public sealed class Sender(AppSide app, long wireBitsPerSecond, int payloadLength)
    {
        private readonly byte[] _payload = new byte[payloadLength];
        private readonly int _wireBytesPerFrame = Math.Max(14 + 28 + payloadLength, 60) + 24;
        private double _credit;
        private long _last;

        public AppSide App { get; } = app;
        public List<long> Samples { get; } = new();

        /// <summary>What the dataplane put on the wire for this socket, in wire bytes.</summary>
        public long SentWireBytes => App.Socket.Pipe.Counters.TxPackets * _wireBytesPerFrame;

        /// <summary>Wire bits per second between two samples (each sample 1000 breaths apart: 10 ms at the default step).</summary>
        public double Rate(int fromSample, int toSample, double secondsPerSample = 0.01) =>
            (Samples[toSample] - Samples[fromSample]) * 8 / ((toSample - fromSample) * secondsPerSample);

        public void Offer(long now)
        {
            var payload = _payload;
            int allowed = int.MaxValue;
            if (wireBitsPerSecond > 0)
            {
                _credit += _last == 0 ? 0 : (now - _last) * (wireBitsPerSecond / 8.0 / _wireBytesPerFrame) / Stopwatch.Frequency;
                _last = now;
                _credit = Math.Min(_credit, 256);
                allowed = (int)_credit;
            }
            int sent = 0;
            while (sent < allowed)
            {
                var slot = App.Tx.Claim();
                if (slot.IsEmpty)
                {
                    break;
                }
                payload.CopyTo(slot[UdpPacketBuilder.HeaderLengthV4..]);
                App.Tx.Commit(UdpPacketBuilder.WriteHeaders(slot, EngineHarness.HostAddress, App.Socket.Pipe.LocalPort,
                    EngineHarness.PeerAddress, SinkPort, payload.Length));
                sent++;
            }
            App.Tx.Publish();
            if (wireBitsPerSecond > 0)
            {
                _credit -= sent;
            }
        }
    }
}
