using Norman.Core.Capture;
using Norman.Core.Pipes;
using Norman.Core.Shm;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Capture;

/// <summary>
/// A capture on the dataplane's path, as tcpdump's socket is on the kernel's: a libpcap filter, a snap length, the
/// directions it sees, and its own ring in shared memory towards the capturing process. A full ring never slows
/// the dataplane: the packet is simply not captured, and counted, as tcpdump's "dropped by kernel". An ordinary
/// user's tap sees only that user's sockets.
/// </summary>
public sealed unsafe class CaptureTap : IDisposable
{
    private readonly RingProducer _ring;
    private readonly BpfFunction? _filter;
    private readonly ProtocolVerdicts? _byProtocol;
    private bool _touched;

    public CaptureTap(long id, string expression, int snapLength, bool inbound, bool outbound, int onlyUid, int onlyAppId, bool afterFilter = false,
        bool atPort = false)
    {
        AfterFilter = afterFilter;
        AtPort = atPort;
        Id = id;
        Expression = expression;
        if (expression.Length > 0)
        {
            var program = PcapFilter.Compile(expression);
            _filter = BpfCompiler.Compile(program);
            _byProtocol = new ProtocolVerdicts(program);
        }
        SnapLength = Math.Clamp(snapLength, 1, CaptureRecord.MaxSnapLength);
        Inbound = inbound;
        Outbound = outbound;
        OnlyUid = onlyUid;
        OnlyAppId = onlyAppId;
        Region = SharedMemory.Create($"norman:capture:{id}", PipeLayout.RingBytes(CaptureRecord.SlotCount, CaptureRecord.SlotSize));
        try
        {
            RingInitializer.Initialize(Region.Address, CaptureRecord.SlotCount, CaptureRecord.SlotSize);
            Wakeup = WakeupSender.Create();
        }
        catch
        {
            Region.Dispose();
            throw;
        }
        _ring = new RingProducer(Region.Address, CaptureRecord.SlotCount, CaptureRecord.SlotSize);
    }

    /// <summary>What a tap holds in the daemon: its ring's memfd, and its wake-up's eventfd and epoll.</summary>
    public const int Descriptors = 3;

    public long Id { get; }
    public string Expression { get; }
    public int SnapLength { get; }
    public bool Inbound { get; }
    public bool Outbound { get; }
    /// <summary>-1 for every user's packets; else only packets of sockets this uid owns.</summary>
    public int OnlyUid { get; }
    public int OnlyAppId { get; }
    /// <summary>
    /// False (the default): the tap sits before the ingress filter and also records what the filter stopped, marked
    /// with the verdict and the deciding rule. True: it records only what the filter let through.
    /// </summary>
    public bool AfterFilter { get; }
    /// <summary>
    /// True: the tap sits at the port, as tcpdump on a kernel interface does. It sees every received frame as it
    /// arrived, whatever became of it (a frame the dataplane dropped is marked with the reason), and every frame sent
    /// to the wire. False: on the path, after parsing and before the filter (ingress), or after the filter (egress).
    /// </summary>
    public bool AtPort { get; }
    public SharedMemory Region { get; }
    /// <summary>How the dataplane wakes the reader; its epoll descriptor goes with the capture's answer.</summary>
    public WakeupSender Wakeup { get; } = null!;

    /// <summary>Packets the filter kept and the ring took.</summary>
    public long Captured;
    /// <summary>Packets the filter kept that the ring had no room for.</summary>
    public long Dropped;

    /// <summary>
    /// Dataplane, once per batch and direction: captures each live frame that passes the tap's owner restriction
    /// and filter, then publishes the ring. An idle tap must cost next to nothing, so the cheapest tests come first:
    /// a batch whose every protocol (<paramref name="mix"/>) the filter rejects unread is passed over whole; in
    /// another, a frame whose protocol alone settles the filter costs a table lookup (<see cref="ProtocolVerdicts"/>), any other
    /// one a filter call; the owner is looked up, and the clock read (once a breath, into
    /// <paramref name="unixNanoseconds"/> while it is 0), only for frames that are captured.
    /// </summary>
    public void OfferBatch(PacketBatch batch, in ProtocolMix mix, byte direction, SocketSet sockets, ref long unixNanoseconds, bool atPort = false)
    {
        if ((direction == CaptureRecord.Inbound ? !Inbound : !Outbound) || direction == CaptureRecord.Inbound && atPort != AtPort)
        {
            return;
        }
        if (_byProtocol is { } table && !mix.Other && (mix.Ipv4 & table.Ipv4MayKeep) == 0 && (mix.Ipv6 & table.Ipv6MayKeep) == 0)
        {
            return;
        }
        bool restricted = OnlyUid >= 0 || OnlyAppId >= 0;
        var filter = _filter;
        var byProtocol = _byProtocol;
        for (int i = 0; i < batch.Count; i++)
        {
            var frame = batch.Frame(i);
            var settled = byProtocol is null ? ProtocolVerdicts.Verdict.Accept : byProtocol.Of(frame);
            if (settled == ProtocolVerdicts.Verdict.Reject)
            {
                continue;
            }
            byte verdict = batch.FilterVerdict(i);
            var dropped = batch.DropReasonOf(i);
            // At the port, every received frame; on the path, what is still going and what the filter stopped; on
            // the way out of the port, only what leaves.
            if (batch.IsDone(i) && !(AtPort && direction == CaptureRecord.Inbound) && (verdict == 0 || AfterFilter || AtPort))
            {
                continue;
            }
            int slot = batch.SocketSlot(i);
            var owner = restricted && slot >= 0 ? sockets[slot] : null;
            if (restricted && ((OnlyUid >= 0 && owner?.OwnerUid != OnlyUid) || (OnlyAppId >= 0 && owner?.AppId != OnlyAppId)))
            {
                continue;
            }
            if (settled == ProtocolVerdicts.Verdict.Depends && !Passes(filter!, frame))
            {
                continue;
            }
            if (unixNanoseconds == 0)
            {
                unixNanoseconds = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
            }
            Record(frame, direction, owner ?? (slot >= 0 ? sockets[slot] : null), unixNanoseconds, verdict, verdict == 0 ? 0 : batch.DecidingRule(i),
                (byte)dropped);
        }
        Flush();
    }

    private static bool Passes(BpfFunction filter, ReadOnlySpan<byte> frame)
    {
        fixed (byte* bytes = frame)
        {
            return filter(bytes, frame.Length, frame.Length) != 0;
        }
    }

    private void Record(ReadOnlySpan<byte> frame, byte direction, PipeSocket? owner, long unixNanoseconds, byte verdict, long rule, byte dropped)
    {
        var slot = _ring.Claim();
        if (slot.IsEmpty)
        {
            Dropped++;
            return;
        }
        int captured = Math.Min(frame.Length, SnapLength);
        CaptureRecord.WriteHeader(slot, unixNanoseconds, frame.Length, direction, owner?.OwnerPid ?? 0, owner?.OwnerUid ?? -1,
            owner is null ? ReadOnlySpan<byte>.Empty : owner.OwnerName, verdict, rule, dropped);
        frame[..captured].CopyTo(slot[CaptureRecord.HeaderSize..]);
        _ring.Commit(CaptureRecord.HeaderSize + captured);
        Captured++;
        _touched = true;
    }

    /// <summary>Publishes what was captured and wakes a sleeping reader.</summary>
    private void Flush()
    {
        if (!_touched)
        {
            return;
        }
        _touched = false;
        _ring.Publish();
        if (_ring.TakeWakeupRequest())
        {
            Wakeup.Signal();
        }
    }

    public void Dispose()
    {
        Wakeup?.Dispose();
        Region.Dispose();
    }
}
