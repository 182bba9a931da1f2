using System.Diagnostics;
using Norman.Daemon.Dataplane.Ports;
using Norman.Daemon.Dataplane.Stages;
using Norman.Daemon.Policy;
using Norman.Daemon.Qos;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// The dataplane: one breath of <see cref="DoWork()"/> pulls a batch from the port and pushes it through the ingress
/// stages into the sockets' RX pipes, then gathers a batch from the TX pipes and pushes it through the egress stages
/// to the port. Time is read once per breath; control commands are applied between breaths. Nothing here allocates,
/// locks or calls an interface per packet.
/// <code>
///   Receive: one batch from the port, through the stages in this order.
///
///    port ─▶ parse ─▶ demux ─▶ filter ─┬─▶ taps ─▶ police ─▶ host ─▶ deliver ─▶ RX pipes ─▶ taps
///            MAC,     checksum, ingress │  ingress, (QoS)     ARP,    copy into            at the port:
///            VLAN,    owning    chain,  │  any:               ping,   the socket's         every frame,
///            lengths  socket    ct      │  verdicts           ND      pipe                 drop reasons
///                                       │ reject               │ unreachable, reset
///                                       └─────────▶ host replies ◀┘  (an outbox: routed, rate-limited)
///
///   Transmit: one batch to the port, filled from three sources in this order.
///
///    1. host replies' outbox ────────────────────────────────────────────────────────────┐
///    2. neighbour queue (frames whose next hop has been resolved since) ──────────────────┤
///    3. TX pipes ─▶ schedule ─▶ validate ─▶ filter ─▶ neighbour ─────────────────────────┤
///                   QoS, copy   anti-     egress     L2 header; unresolved: queued,      │
///                   out         spoofing  chain      ARP asked ─▶ outbox, flushed again ─┤
///                                                                  taps: egress, any, ◀──┤
///                                                                  port (what leaves)    ▼
///                                                                                       port
/// </code>
/// Commands from the control plane are applied between breaths (Engine.Commands.cs).
/// </summary>
public sealed partial class Engine
{
    private readonly IPort _port;
    private readonly PacketBatch _rx = new();
    private readonly PacketBatch _tx = new();
    private readonly SocketSet _sockets = new();
    private readonly SocketLookup _lookup;
    private readonly ParseStage _parse;
    private readonly HostStage _host;
    private readonly HostReplies _replies;
    private readonly DemuxStage _demux;
    private readonly DeliverStage _deliver;
    private readonly QosScheduler _scheduler;
    private readonly PoliceStage _police;
    private readonly ValidateStage _validate;
    private readonly NeighbourStage _neighbour;
    private readonly FilterStage _ingressFilter;
    private readonly FilterStage _egressFilter;
    private PolicySnapshot _policy = PolicySnapshot.Empty;
    private volatile PolicySnapshot? _publishedPolicy;
    private QosSnapshot _qos = QosSnapshot.DefaultOnly();
    private volatile QosSnapshot? _publishedQos;
    private volatile TraceTap? _trace;
    private Norman.Daemon.Capture.CaptureTap[] _taps = [];
    /// <summary>Some tap sits at the port (sees every received frame after the stages, not only those on the path).</summary>
    private bool _portTaps;
    private long _unixNanoseconds;
    private long _breaths;

    // kernelResolutions: when the kernel owns ARP for the host's address (an xdp port sharing it), where next hops are asked.
    public Engine(IPort port, HostInterface host, int initialFlowCapacity = 1 << 12, int maxTrackedFlows = 65536,
        KernelResolutions? kernelResolutions = null)
    {
        _port = port;
        Host = host;
        Neighbours = new NeighbourTable(Stopwatch.Frequency);
        _lookup = new SocketLookup(initialFlowCapacity);
        _parse = new ParseStage(Counters, host);
        _replies = new HostReplies(Counters, host, Stopwatch.Frequency) { Kernel = kernelResolutions };
        _host = new HostStage(Counters, host, Neighbours, _replies);
        _demux = new DemuxStage(Counters, _lookup, host);
        _deliver = new DeliverStage(Counters, _sockets);
        _scheduler = new QosScheduler(Counters, _sockets, host);
        _police = new PoliceStage(Counters, _sockets, host);
        _validate = new ValidateStage(Counters, _sockets, host);
        _neighbour = new NeighbourStage(Counters, _sockets, host, Neighbours, _replies);
        Conntrack = new Conntrack(maxTrackedFlows, Stopwatch.Frequency);
        _ingressFilter = new FilterStage(Chain.Ingress, Counters, _sockets, _replies, Conntrack);
        _egressFilter = new FilterStage(Chain.Egress, Counters, _sockets, _replies, Conntrack);
        _replies.AnnounceAddress();
        if (host.AcceptsRouterAdvertisements)
        {
            _replies.SolicitRouters();
        }
    }

    /// <summary>Bytes allocated on the dataplane thread while applying control commands (not per packet).</summary>
    public long CommandAllocatedBytes { get; private set; }

    public HostInterface Host { get; }
    public Conntrack Conntrack { get; }
    /// <summary>Capture taps the dataplane feeds (read racily, for display and tests).</summary>
    public int TapCount => Volatile.Read(ref _taps).Length;
    public VerdictCache IngressVerdicts => _ingressFilter.Cache;
    public VerdictCache EgressVerdicts => _egressFilter.Cache;
    public IPort Port => _port;
    public DataplaneCounters Counters { get; } = new();

    /// <summary>TX pipes the scheduler has looked at, over every breath.</summary>
    public long TxPipeLooks => _scheduler.Looks;
    /// <summary>Breaths taken (read racily from another thread: for tests and figures).</summary>
    public long Breaths => Volatile.Read(ref _breaths);
    /// <summary>TX pipes whose consumer index was published, over every breath.</summary>
    public long TxPipePublishes => _scheduler.Publishes;
    public NeighbourTable Neighbours { get; }

    /// <summary>Verify UDP checksums on receive, as the kernel does (ethtool's rx checksumming, done on this core).</summary>
    public bool VerifyChecksums { get => _demux.VerifyChecksums; set => _demux.VerifyChecksums = value; }

    /// <summary>Sockets served now; read it on the dataplane thread or when it is stopped.</summary>
    public int SocketCount => _sockets.Count;
    public int FlowCount => _lookup.Count;

    /// <summary>The policy the dataplane runs now (read on the dataplane thread, or for display).</summary>
    public PolicySnapshot Policy => _policy;

    /// <summary>
    /// Publishes a new policy with one ordered store; the dataplane takes it at its next batch boundary, so no
    /// packet sees half of one ruleset and half of another, and none is lost by the swap.
    /// </summary>
    public void Publish(PolicySnapshot policy)
    {
        _publishedPolicy = policy;
        _sleeper?.Nudge();
    }

    /// <summary>Publishes new QoS classes, taken at the next batch boundary as a filter policy is.</summary>
    public void Publish(QosSnapshot qos)
    {
        _publishedQos = qos;
        _sleeper?.Nudge();
    }

    /// <summary>The QoS classes the dataplane runs now (for display).</summary>
    public QosSnapshot Qos => _qos;

    /// <summary>Starts (or, with null, stops) a live trace; the dataplane sees it from its next batch.</summary>
    public TraceTap? Trace { get => _trace; set => _trace = value; }

    /// <summary>One breath. Returns the packets moved, so the idle strategy knows whether to back off.</summary>
    public int DoWork() => DoWork(Stopwatch.GetTimestamp());

    /// <summary>One breath at a given time (a Stopwatch timestamp): tests drive rates on a clock of their own.</summary>
    public int DoWork(long now)
    {
        _breaths++;
        // Packets of one breath share a timestamp, as they share a poll; the first tap that captures reads the clock.
        _unixNanoseconds = 0;
        var published = _publishedPolicy;
        if (published is not null && !ReferenceEquals(published, _policy))
        {
            _policy = published;
        }
        var qos = _publishedQos;
        if (qos is not null && !ReferenceEquals(qos, _qos))
        {
            _qos = qos;
        }
        if (!_commands.IsEmpty || _closing.Count > 0 || _listings.Count > 0)
        {
            ColdWork(now, closesAndListings: true);
        }
        int received = Receive(now);
        int work = received + Transmit(now, busy: received > 0);
        if (_policy.UsesConntrack)
        {
            Conntrack.Sweep(now);
        }
        return work;
    }

    /// <summary>
    /// Cold work between batches: the commands, and with <paramref name="closesAndListings"/> the closing sockets and
    /// the listings. What it allocates (completing a command wakes its awaiter) is counted apart, so that what remains
    /// is the hot loop's own allocation: none.
    /// </summary>
    private void ColdWork(long now, bool closesAndListings)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        ApplyCommands();
        if (closesAndListings)
        {
            FinishClosing(now);
            ContinueListings(now);
        }
        CommandAllocatedBytes += GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private int Receive(long now)
    {
        _rx.Clear();
        int received = _port.Receive(_rx, now);
        if (received == 0)
        {
            return 0;
        }
        if (!_commands.IsEmpty)
        {
            // A bind is answered before the dataplane applies it: a frame read from the port after that answer (sent
            // by someone who heard of the bind) must find the socket, so what was queued before the frame comes first.
            ColdWork(now, closesAndListings: false);
        }
        Counters.PortRxPackets += received;
        for (int i = 0; i < _rx.Count; i++)
        {
            Counters.PortRxBytes += _rx.Length(i);
        }
        _parse.Run(_rx);
        _demux.Run(_rx);
        _ingressFilter.Run(_rx, 0, _policy, now, _trace);
        var mix = default(Norman.Daemon.Capture.ProtocolMix);
        if (_taps.Length > 0)
        {
            // After the filter, which marks what it stopped: a tap "before the filter" still sees those, with the verdict.
            mix = Norman.Daemon.Capture.ProtocolMix.Of(_rx);
            Tap(_rx, mix, Norman.Core.Capture.CaptureRecord.Inbound);
        }
        if (_qos.Polices)
        {
            _police.Run(_rx, _qos, now);
        }
        _host.Run(_rx, now);
        _deliver.Run(_rx, _breaths, now);
        if (_portTaps)
        {
            // Last, so that it knows what became of every frame: the port's tap sees them all, drops with their reason.
            // (The stages do not rewrite received frames: the mix taken above still holds.)
            Tap(_rx, mix, Norman.Core.Capture.CaptureRecord.Inbound, atPort: true);
        }
        Counters.Batches++;
        return received;
    }

    /// <summary>The egress half of a breath; when <paramref name="busy"/> (packets came in), the scheduler looks at busy pipes and a sweep of the others, not all.</summary>
    private int Transmit(long now, bool busy)
    {
        _tx.Clear();
        FlushOutbox();
        if (_neighbour.Waiting > 0)
        {
            _neighbour.Release(_tx, now);
        }
        long budget = _port.TransmitBudget(now);
        int first = _tx.Count;
        _scheduler.Run(_tx, budget, _qos, now, busy);
        if (_tx.Count > first)
        {
            _validate.Run(_tx, first);
            _egressFilter.Run(_tx, first, _policy, now, _trace);
            _neighbour.Run(_tx, first, now);
        }
        FlushOutbox();
        if (_tx.Count == 0)
        {
            return 0;
        }
        if (_taps.Length > 0)
        {
            FrameWhatTheFilterStopped(_tx, first);
            Tap(_tx, Norman.Daemon.Capture.ProtocolMix.Of(_tx), Norman.Core.Capture.CaptureRecord.Outbound);
        }
        int wireFull = _port.Transmit(_tx, now);
        for (int i = 0; i < wireFull; i++)
        {
            Counters.Drop(DropReason.PortTxFull);
        }
        int sent = -wireFull;
        for (int i = 0; i < _tx.Count; i++)
        {
            if (!_tx.IsDone(i))
            {
                sent++;
                Counters.PortTxBytes += _tx.Length(i);
            }
        }
        Counters.PortTxPackets += sent;
        return _tx.Count;
    }

    /// <summary>
    /// Packets the egress filter stopped never reached the neighbour stage, which writes the Ethernet header: give them
    /// one (from us, to no next hop: 00:00:00:00:00:00) so that a capture records a frame tcpdump reads, not the stale
    /// bytes of whatever last used the buffer.
    /// </summary>
    private void FrameWhatTheFilterStopped(PacketBatch batch, int first)
    {
        for (int i = first; i < batch.Count; i++)
        {
            if (batch.FilterVerdict(i) != 0)
            {
                var frame = batch.Frame(i);
                ushort etherType = frame.Length > Norman.Core.Packets.EthernetHeader.Size && frame[Norman.Core.Packets.EthernetHeader.Size] >> 4 == 6
                    ? Norman.Core.Packets.EtherTypes.IPv6 : Norman.Core.Packets.EtherTypes.IPv4;
                Norman.Core.Packets.EthernetHeader.Write(frame, Norman.Core.Packets.MacAddress.Zero, Host.Mac, etherType);
            }
        }
    }

    /// <summary>Offers the batch to every capture tap; each takes what passes its filter and publishes its ring.</summary>
    private void Tap(PacketBatch batch, in Norman.Daemon.Capture.ProtocolMix mix, byte direction, bool atPort = false)
    {
        var taps = _taps;
        for (int t = 0; t < taps.Length; t++)
        {
            taps[t].OfferBatch(batch, mix, direction, _sockets, ref _unixNanoseconds, atPort);
        }
    }

    private void FlushOutbox()
    {
        var outbox = _replies.Outbox;
        while (outbox.Count > 0 && !_tx.IsFull)
        {
            var frame = outbox.Peek();
            frame.CopyTo(_tx.NextBuffer());
            _tx.Append(frame.Length);
            outbox.Pop();
        }
    }
}
