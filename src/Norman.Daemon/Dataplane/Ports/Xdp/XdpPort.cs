using System.Globalization;
using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Ports.Xdp;

/// <summary>
/// A real interface bypassed through AF_XDP, shared with the kernel: the steering program sends Norman's frames to
/// one AF_XDP socket per queue (<c>xdp:eth1</c>: every queue; <c>xdp:eth1:0-3</c> or <c>xdp:eth1:0,2</c>: those) and
/// leaves everything else to the kernel's stack. A breath takes received frames from each queue in turn and sends
/// through the first queue's socket. See <see cref="XskSocket"/> for the rings, <see cref="SteeringProgram"/> for what
/// is Norman's.
/// </summary>
public sealed class XdpPort : IPort, IPortStatistics
{
    /// <summary>The largest MTU whose frames fit a UMEM chunk behind the kernel's XDP headroom (256 bytes) in copy mode.</summary>
    public const int MaxMtu = XskSocket.ChunkSize - 256 - EthernetHeader.Size - 2 * VlanTag.Size;

    private readonly XdpSteering _steering;
    private readonly XskSocket[] _sockets;
    private readonly LineRate _lineRate;
    private int _nextQueue;
    private bool _disposed;

    public XdpPort(string specification, NetAddress address, IReadOnlyList<NetAddress> addresses6, bool sharedAddress, long lineRateBitsPerSecond)
    {
        var (device, queues) = Parse(specification);
        Device = device;
        int ifindex = Interfaces.Index(device, "an xdp port");
        int mtu = Interfaces.Mtu(device);
        if (mtu > MaxMtu)
        {
            throw new ArgumentException($"{device}'s MTU is {mtu}; an XDP port carries frames of at most {MaxMtu} bytes of IP " +
                $"(one 2 KiB chunk each). Lower it (`ip link set {device} mtu 1500`).");
        }
        int queueCount = Interfaces.RxQueues(device);
        queues ??= Enumerable.Range(0, queueCount).ToArray();
        if (queues.FirstOrDefault(q => q >= queueCount, -1) is int missing and >= 0)
        {
            throw new ArgumentException($"{device} has {queueCount} receive queue{(queueCount == 1 ? "" : "s")} (0–{queueCount - 1}); there is no queue {missing}.");
        }
        _steering = new XdpSteering(device, ifindex, queueCount, address, addresses6, sharedAddress);
        var sockets = new List<XskSocket>();
        try
        {
            foreach (int queue in queues)
            {
                var socket = new XskSocket(ifindex, queue, device);
                sockets.Add(socket);
                _steering.AddSocket(queue, socket.Fd);
            }
        }
        catch
        {
            sockets.ForEach(s => s.Dispose());
            _steering.Dispose();
            throw;
        }
        _sockets = sockets.ToArray();
        _lineRate = new LineRate(lineRateBitsPerSecond);
        Mode = $"{(_steering.Native ? "native" : "generic")}, {(_sockets.All(s => s.ZeroCopy) ? "zero-copy" : "copy")}, " +
            $"queue{(queues.Length == 1 ? "" : "s")} {string.Join(",", queues)}{(sharedAddress ? ", shared address" : "")}";
        Name = $"xdp:{device} ({Mode})";
    }

    public string Name { get; }
    public string Device { get; }
    /// <summary>How the port runs: driver or generic XDP, zero-copy or copy, its queues, the address mode.</summary>
    public string Mode { get; }
    public XdpSteering Steering => _steering;

    public int Receive(PacketBatch batch, long now)
    {
        int received = 0;
        for (int turn = 0; turn < _sockets.Length && !batch.IsFull; turn++)
        {
            received += _sockets[_nextQueue].Receive(batch);
            _nextQueue = _nextQueue + 1 == _sockets.Length ? 0 : _nextQueue + 1;
        }
        return received;
    }

    public long TransmitBudget(long now) => _lineRate.Budget(now);

    public IReadOnlyList<int> WakeDescriptors => [.. _sockets.Select(socket => socket.Fd)];

    /// <summary>
    /// An XSK is readable while its RX ring holds frames, and the kernel signals it per batch it fills. A driver in
    /// zero-copy mode that wants a kick to refill (the fill ring's need_wakeup) gets it from the poll itself.
    /// </summary>
    public SleepAllowance PrepareToSleep(long now)
    {
        foreach (var socket in _sockets)
        {
            if (socket.HasReceived)
            {
                return SleepAllowance.NotNow;
            }
        }
        return SleepAllowance.UntilWoken;
    }

    public int Transmit(PacketBatch batch, long now)
    {
        var socket = _sockets[0];
        uint producer = socket.BeginTransmit();
        int dropped = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            var frame = batch.Frame(i);
            _lineRate.Charge(frame.Length);
            if (!socket.TryQueue(frame, ref producer))
            {
                dropped++;
            }
        }
        socket.EndTransmit(producer);
        return dropped;
    }

    /// <summary>
    /// The kernel's counts, over the port's sockets: frames it could not hand Norman because the RX ring was full or the
    /// fill ring empty (Norman fell behind), and all it dropped.
    /// </summary>
    public void AddCounters(Dictionary<string, long> counters)
    {
        long dropped = 0, ringFull = 0, fillEmpty = 0;
        foreach (var socket in _sockets)
        {
            var (rxDropped, rxRingFull, fillRingEmpty) = socket.Statistics();
            dropped += (long)rxDropped;
            ringFull += (long)rxRingFull;
            fillEmpty += (long)fillRingEmpty;
        }
        counters["xdp_rx_dropped"] = dropped;
        counters["xdp_rx_ring_full"] = ringFull;
        counters["xdp_fill_ring_empty"] = fillEmpty;
    }

    /// <summary>"eth1" (every queue), "eth1:2", "eth1:0-3" or "eth1:0,2".</summary>
    public static (string Device, int[]? Queues) Parse(string specification)
    {
        int colon = specification.IndexOf(':');
        if (colon < 0)
        {
            return (specification, null);
        }
        var queues = new List<int>();
        foreach (var part in specification[(colon + 1)..].Split(','))
        {
            var range = part.Split('-');
            if (range.Length is < 1 or > 2 || !int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out int first)
                || !int.TryParse(range[^1], NumberStyles.None, CultureInfo.InvariantCulture, out int last) || last < first || last - first > 1023)
            {
                throw new ArgumentException($"'{specification[(colon + 1)..]}' is not a list of queues: write xdp:{specification[..colon]}:0-3 or :0,2 " +
                    $"(or xdp:{specification[..colon]} for every queue).");
            }
            queues.AddRange(Enumerable.Range(first, last - first + 1));
        }
        return (specification[..colon], queues.Distinct().Order().ToArray());
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        // The program first: from then on the kernel has every frame again, then the sockets go.
        _steering.Dispose();
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }
    }
}
