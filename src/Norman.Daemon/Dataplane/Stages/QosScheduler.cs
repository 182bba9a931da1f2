using Norman.Core.Packets;
using Norman.Daemon.Dataplane.Ports;
using Norman.Daemon.Qos;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Egress, first stage: chooses which TX pipes to serve, HTB-like on a flat tree whose root is the port's line rate.
/// With no class configured every socket is in the default class, and this is deficit round robin between pipes,
/// fair by bytes. Each breath:
/// <list type="number">
/// <item>every socket with packets waiting joins its class's list. A breath looks at the pipes that had packets at
/// their last look, at those their applications marked in their users' ready maps (<see cref="Norman.Core.Pipes.ReadyMap"/>)
/// since, and at <see cref="SweepPerBreathMarked"/> others in turn, so a thousand idle sockets cost a breath a few
/// words read, not a thousand looks. While some socket has no ready bit, a busy breath sweeps
/// <see cref="SweepPerBreath"/> pipes instead, and an idle one looks at every pipe;</item>
/// <item>guarantees: band by band (0 first), each class sends while it is under its rate;</item>
/// <item>sharing: band by band, the classes under their ceiling share what the line has left by deficit round robin
/// (quantum = weight × one full frame), so a higher band takes all it wants before a lower one sends. What a class
/// borrows here is charged to its ceiling only: it gets its rate, plus its weight's share of what is left.</item>
/// </list>
/// Inside a class its sockets take turns by deficit round robin, a full frame's bytes a turn. When the line's budget cannot take the next packet, the
/// breath ends: nothing behind it overtakes with a smaller one, so small packets do not win the line whenever it
/// frees less room than a large one needs. Work per breath grows with the sockets and the classes
/// that have packets waiting, never with the classes configured. Packets are copied out of the pipe before they are
/// looked at (see <see cref="TxPipeReader"/>) and marked with the class's DSCP.
/// </summary>
public sealed class QosScheduler(DataplaneCounters counters, SocketSet sockets, HostInterface host)
{
    /// <summary>A socket's turn inside its class: one full frame's bytes on the wire.</summary>
    private const int SocketQuantum = ClassState.QuantumPerWeight;

    /// <summary>Round-robin passes over a band in one breath, at most (a batch is 32 packets: far fewer are needed).</summary>
    private const int MaxPasses = 2 * PacketBatch.Capacity;

    /// <summary>Pipes without packets at their last look that a busy breath looks at, in turns, while some socket has no ready bit.</summary>
    public const int SweepPerBreath = 64;

    /// <summary>
    /// The sweep when every socket marks its publishes: a safety net, so that a pipe whose mark was lost (its user's
    /// own hostile process cleared it) still leaves within a sweep of the sockets.
    /// </summary>
    public const int SweepPerBreathMarked = 2;

    /// <summary>The line's budget could not take the next packet: nothing more leaves this breath.</summary>
    private bool _lineFull;

    /// <summary>The walk positions of the pipes that had packets at their last look, and this breath's.</summary>
    private int[] _busy = new int[64];
    private int _busyCount;
    private int[] _nextBusy = new int[64];
    /// <summary>The walk positions a busy breath looks at, in walk order (the classes' turns rotate by it).</summary>
    private int[] _looks = new int[2 * 64 + SweepPerBreath];
    private int _sweepCursor;

    /// <summary>
    /// A socket's part in this breath, by its slot: its place in its class's list (the next socket's slot, -1 at the
    /// end), what it has waiting, its round-robin deficit and turn inside the class (kept across breaths), its
    /// position in the walk and the bad slots skipped in its pipe. The scheduler's own, not the socket's.
    /// </summary>
    private struct SocketTurn
    {
        public int Next;
        public int Waiting;
        public long Deficit;
        public bool Open;
        public int Order;
        public int BadSlots;
    }

    private SocketTurn[] _turns = new SocketTurn[64];
    /// <summary>Per class (by index in the snapshot): the first and last socket (slots) of this breath's list; -1 when empty.</summary>
    private int[] _first = [];
    private int[] _last = [];
    /// <summary>Per band, this breath's classes with packets waiting (class indices) and how many.</summary>
    private readonly int[][] _bandClasses = new int[TrafficClass.Bands][];
    private readonly int[] _bandCount = new int[TrafficClass.Bands];
    /// <summary>Per band, the class whose round-robin turn a full batch interrupted, to resume there; -1 for none.</summary>
    private readonly int[] _bandResume = new int[TrafficClass.Bands];
    /// <summary>The snapshot the lists above are sized and reset for: a new one starts the scheduling afresh.</summary>
    private QosSnapshot? _adopted;

    /// <summary>Some pipe had packets at its last look (QoS or the line held them back, or the breath's batch filled).</summary>
    public bool HasBusyPipes => _busyCount > 0;

    /// <summary>TX pipes looked at, over every breath: what the sweep saves shows here.</summary>
    public long Looks { get; private set; }

    /// <summary>TX pipes whose consumer index a breath published (those that had packets), over every breath.</summary>
    public long Publishes { get; private set; }

    /// <summary>
    /// Room for sockets up to this count and slot: the engine calls it as it adds one (cold), so that no breath
    /// allocates.
    /// </summary>
    public void Reserve(int sockets)
    {
        if (_busy.Length < sockets)
        {
            int size = Math.Max(sockets, 2 * _busy.Length);
            Array.Resize(ref _busy, size);
            _nextBusy = new int[size];
            _looks = new int[2 * size + SweepPerBreath]; // the busy, the marked, and a sweep
        }
        if (_turns.Length < sockets)
        {
            Array.Resize(ref _turns, Math.Max(sockets, 2 * _turns.Length));
        }
    }

    /// <summary>A socket newly in <paramref name="slot"/> starts with no turn (a slot is reused after a socket closes).</summary>
    public void Forget(int slot) => _turns[slot] = new SocketTurn { Next = -1 };

    /// <summary>
    /// Takes a newly published snapshot: its classes' lists empty, no turn to resume. It grows the lists only for a
    /// policy with more classes than any before (a swap, never a packet).
    /// </summary>
    private void Adopt(QosSnapshot qos)
    {
        _adopted = qos;
        int classes = qos.Classes.Length;
        if (_first.Length < classes)
        {
            _first = new int[classes];
            _last = new int[classes];
        }
        Array.Fill(_first, -1);
        Array.Fill(_last, -1);
        for (int band = 0; band < TrafficClass.Bands; band++)
        {
            int members = qos.ClassesInBand(band);
            if (_bandClasses[band] is null || _bandClasses[band].Length < members)
            {
                _bandClasses[band] = new int[Math.Max(members, 8)];
            }
            _bandCount[band] = 0;
            _bandResume[band] = -1;
        }
    }

    /// <summary>
    /// Fills <paramref name="batch"/> from the TX pipes within the line's <paramref name="budget"/>; when
    /// <paramref name="busy"/> (packets came in this breath), looks only at the busy pipes and a sweep of the others.
    /// </summary>
    public void Run(PacketBatch batch, long budget, QosSnapshot qos, long now, bool busy)
    {
        int count = sockets.Count;
        if (count == 0)
        {
            return;
        }
        if (!ReferenceEquals(qos, _adopted))
        {
            Adopt(qos);
        }
        _lineFull = false;
        if (!Gather(qos, count, now, busy || _busyCount > 0))
        {
            return; // nothing waits in the pipes looked at: the common breath of a receiving host
        }
        for (int band = 0; band < TrafficClass.Bands && !batch.IsFull && !_lineFull; band++)
        {
            ServeGuarantees(qos, band, batch, ref budget);
        }
        for (int band = 0; band < TrafficClass.Bands && !batch.IsFull && !_lineFull; band++)
        {
            ShareBand(qos, band, batch, ref budget);
        }
        Release(qos);
    }

    /// <summary>
    /// Puts every socket with packets waiting on its class's list, and each such class on its band's list; false if
    /// none has any. With more sockets than a sweep, only the busy pipes, the marked ones and the next sweep of the
    /// others are looked at: always when every socket has a ready bit, else only with <paramref name="sweep"/>.
    /// </summary>
    private bool Gather(QosSnapshot qos, int count, long now, bool sweep)
    {
        bool any = false;
        int nextBusy = 0;
        bool marked = sockets.Unmarked == 0;
        if (count <= SweepPerBreath + _busyCount || !sweep && !marked)
        {
            if (marked)
            {
                TakeMarks(0, keep: false); // every pipe is looked at now; before the looks, so a publish after them marks again
            }
            for (int i = 0; i < count; i++)
            {
                any |= Look(qos, i, now, ref nextBusy);
            }
        }
        else
        {
            int looks = 0;
            for (int b = 0; b < _busyCount; b++)
            {
                if (_busy[b] < count)
                {
                    _looks[looks++] = _busy[b];
                }
            }
            looks = TakeMarks(looks, keep: true);
            if (_sweepCursor >= count)
            {
                _sweepCursor = 0; // sockets were removed since the last sweep
            }
            int sweepLength = marked ? SweepPerBreathMarked : SweepPerBreath;
            for (int k = 0; k < sweepLength; k++)
            {
                _looks[looks++] = _sweepCursor;
                _sweepCursor = _sweepCursor + 1 >= count ? 0 : _sweepCursor + 1;
            }
            Array.Sort(_looks, 0, looks);
            for (int l = 0; l < looks; l++)
            {
                if (l == 0 || _looks[l] != _looks[l - 1])
                {
                    any |= Look(qos, _looks[l], now, ref nextBusy);
                }
            }
        }
        (_busy, _nextBusy) = (_nextBusy, _busy);
        _busyCount = nextBusy;
        for (int band = 0; band < TrafficClass.Bands; band++)
        {
            var members = _bandClasses[band];
            if (_bandCount[band] > 1)
            {
                // Round robin needs one order every breath: by class index (no allocation; few classes are active).
                Array.Sort(members, 0, _bandCount[band]);
            }
            for (int m = 0; m < _bandCount[band]; m++)
            {
                RotateToNextTurn(qos.Classes[members[m]]);
            }
        }
        return any;
    }

    /// <summary>
    /// Clears the marks made in the ready maps since the last breath and, with <paramref name="keep"/>, adds the walk
    /// positions of the marked pipes to the looks, after <paramref name="looks"/> of them; returns the looks. A word a
    /// breath per 64 bits in use: no socket's memory is read.
    /// </summary>
    private int TakeMarks(int looks, bool keep)
    {
        for (int m = 0; m < sockets.ReadyMapCount; m++)
        {
            var ready = sockets.ReadyMap(m);
            for (int w = 0; w < ready.WordsInUse; w++)
            {
                ulong bits = ready.Map.Take(w);
                while (keep && bits != 0)
                {
                    int bit = (w << 6) + Norman.Core.Pipes.ReadyMap.NextBit(ref bits);
                    if (ready.At(bit) is { ActiveIndex: >= 0 } socket)
                    {
                        _looks[looks++] = socket.ActiveIndex;
                    }
                }
            }
        }
        return looks;
    }

    /// <summary>Looks at the pipe at walk position <paramref name="i"/>: with packets waiting, it joins its class's list and the busy ones.</summary>
    private bool Look(QosSnapshot qos, int i, long now, ref int nextBusy)
    {
        var socket = sockets.Active(i);
        ref var turn = ref _turns[socket.Slot];
        turn.Order = i;
        turn.BadSlots = 0;
        Looks++;
        int waiting = TxPipeReader.Waiting(socket, counters);
        if (waiting == 0)
        {
            return false;
        }
        _nextBusy[nextBusy++] = i;
        var @class = qos.SendingClassOf(socket, host.Address);
        turn.Waiting = waiting;
        bool firstOfItsClass = _first[@class.Index] < 0;
        Enqueue(@class.Index, socket.Slot);
        if (firstOfItsClass)
        {
            @class.Counters.Backlog = 0;
            @class.Refill(now);
            _bandClasses[@class.Band][_bandCount[@class.Band]++] = @class.Index;
        }
        @class.Counters.Backlog += waiting;
        return true;
    }

    private void ServeGuarantees(QosSnapshot qos, int band, PacketBatch batch, ref long budget)
    {
        var members = _bandClasses[band];
        for (int m = 0; m < _bandCount[band] && !batch.IsFull && !_lineFull; m++)
        {
            var @class = qos.Classes[members[m]];
            while (@class.UnderRate && @class.UnderCeil && !batch.IsFull)
            {
                if (!SendOne(@class, batch, ref budget, long.MaxValue))
                {
                    break;
                }
            }
        }
    }

    /// <summary>Deficit round robin among the band's classes under their ceiling, resuming an interrupted turn.</summary>
    private void ShareBand(QosSnapshot qos, int band, PacketBatch batch, ref long budget)
    {
        int members = _bandCount[band];
        if (members == 0)
        {
            return;
        }
        var classes = _bandClasses[band];
        int start = 0;
        int resume = _bandResume[band];
        while (start < members && classes[start] < resume)
        {
            start++;
        }
        start %= members;
        // Each pass gives every class one turn; stop when a pass makes no progress (all empty, capped or out of
        // line). A class that only closed a turn its deficit could not pay for has made progress: the next pass
        // gives it a fresh quantum, which always pays for a full frame. The pass count bounds it all the same.
        for (int pass = 0, progress = 1; progress > 0 && pass < MaxPasses; pass++)
        {
            progress = 0;
            for (int k = 0; k < members; k++)
            {
                int position = (start + k) % members;
                var @class = qos.Classes[classes[position]];
                if (_first[@class.Index] < 0)
                {
                    continue;
                }
                if (!@class.UnderCeil)
                {
                    @class.Counters.Overlimits++;
                    continue;
                }
                if (!@class.TurnOpen)
                {
                    @class.Deficit += @class.Quantum;
                    @class.TurnOpen = true;
                }
                while (_first[@class.Index] >= 0 && @class.UnderCeil && !batch.IsFull && SendOne(@class, batch, ref budget, @class.Deficit))
                {
                    progress++;
                }
                if (batch.IsFull || _lineFull)
                {
                    // Interrupted inside this class's turn: the next breath resumes it before the others.
                    _bandResume[band] = @class.Index;
                    return;
                }
                @class.TurnOpen = false;
                if (_first[@class.Index] < 0)
                {
                    @class.Deficit = 0;
                }
                else if (@class.UnderCeil)
                {
                    progress++;
                }
            }
        }
        _bandResume[band] = -1;
    }

    /// <summary>
    /// Sends the head packet of the class's first socket if it fits the line's budget and <paramref name="allowance"/>
    /// (the class's deficit in round robin). Inside the class, sockets take turns by deficit round robin too, a full
    /// frame's bytes a turn: fair by bytes as between classes, and a socket of small packets sends a run of them from
    /// one pipe rather than one packet per pipe in turn, which would touch a different ring for every packet.
    /// </summary>
    private bool SendOne(ClassState @class, PacketBatch batch, ref long budget, long allowance)
    {
        int c = @class.Index;
        while (_first[c] >= 0)
        {
            int slot = _first[c];
            var socket = sockets[slot];
            ref var turn = ref _turns[slot];
            int frameLength = TxPipeReader.HeadFrameLength(socket, counters, ref turn.Waiting, ref turn.BadSlots);
            if (frameLength == 0)
            {
                EndTurn(ref turn);
                Unlink(c);
                continue;
            }
            if (!turn.Open)
            {
                turn.Deficit += SocketQuantum;
                turn.Open = true;
            }
            long wireBytes = LineRate.WireBytes(frameLength);
            if (wireBytes > budget)
            {
                _lineFull = true;
                return false;
            }
            if (wireBytes > allowance)
            {
                return false;
            }
            if (wireBytes > turn.Deficit)
            {
                // Its turn is spent: the next socket's, or (alone) a new one of its own.
                turn.Open = false;
                @class.LastServedOrder = turn.Order;
                if (turn.Next >= 0)
                {
                    Unlink(c);
                    Enqueue(c, slot);
                }
                continue;
            }
            TxPipeReader.CopyHead(socket, batch, frameLength);
            if (@class.Tos >= 0)
            {
                MarkDscp(batch.Frame(batch.Count - 1), @class.Tos);
            }
            turn.Waiting--;
            turn.Deficit -= wireBytes;
            budget -= wireBytes;
            if (allowance != long.MaxValue)
            {
                @class.Deficit -= wireBytes;
            }
            @class.Charge(wireBytes, onGuarantee: allowance == long.MaxValue);
            @class.Counters.Packets++;
            @class.Counters.Bytes += frameLength;
            @class.Counters.Backlog--;
            // Mid-turn, the next breath starts with this socket again; the rotation starts after the order given.
            @class.LastServedOrder = turn.Order - 1;
            if (turn.Waiting == 0)
            {
                // The count seen at the gather is spent: look again, so a pipe the application keeps full never
                // looks empty to round robin (which would forfeit its deficit).
                turn.Waiting = TxPipeReader.Waiting(socket, counters);
            }
            if (turn.Waiting == 0)
            {
                EndTurn(ref turn);
                @class.LastServedOrder = turn.Order;
                Unlink(c);
            }
            return true;
        }
        return false;
    }

    /// <summary>A socket with nothing left to send loses what remained of its turn, as deficit round robin says.</summary>
    private static void EndTurn(ref SocketTurn turn)
    {
        turn.Open = false;
        turn.Deficit = 0;
    }

    /// <summary>Appends a socket (its slot) to the class's list for this breath.</summary>
    private void Enqueue(int @class, int slot)
    {
        _turns[slot].Next = -1;
        if (_last[@class] < 0)
        {
            _first[@class] = slot;
        }
        else
        {
            _turns[_last[@class]].Next = slot;
        }
        _last[@class] = slot;
    }

    /// <summary>Removes the class's first socket from this breath's list.</summary>
    private void Unlink(int @class)
    {
        int slot = _first[@class];
        _first[@class] = _turns[slot].Next;
        if (_first[@class] < 0)
        {
            _last[@class] = -1;
        }
        _turns[slot].Next = -1;
    }

    /// <summary>
    /// Once a breath, when the class's list is complete: moves the sockets up to the one served last to the back of
    /// the list, so that its sockets take turns across breaths, not only within one.
    /// </summary>
    private void RotateToNextTurn(ClassState @class)
    {
        int c = @class.Index;
        if (_first[c] < 0 || _turns[_last[c]].Order <= @class.LastServedOrder)
        {
            return; // nobody after the last served: start from the beginning
        }
        while (_turns[_first[c]].Order <= @class.LastServedOrder)
        {
            int moved = _first[c];
            _first[c] = _turns[moved].Next;
            _turns[moved].Next = -1;
            _turns[_last[c]].Next = moved;
            _last[c] = moved;
        }
    }

    /// <summary>
    /// Publishes the consumer index of every pipe that had packets at this breath's look (only those can have been
    /// served: a breath beside a thousand idle sockets touches none of them) and empties the per-breath lists (a
    /// socket's own link is reset when it is next enqueued).
    /// </summary>
    private void Release(QosSnapshot qos)
    {
        for (int b = 0; b < _busyCount; b++)
        {
            sockets.Active(_busy[b]).Tx.Publish();
        }
        // One fence for the batch, between the publishes and the looks at the producers' wants-room flags.
        Interlocked.MemoryBarrier();
        for (int b = 0; b < _busyCount; b++)
        {
            var socket = sockets.Active(_busy[b]);
            if (socket.Tx.TakeRoomRequest())
            {
                // Its application found the pipe full and waits for room (a program polling for EPOLLOUT).
                socket.Wakeup.Signal();
                socket.Counters.Wakeups++;
                counters.Wakeups++;
            }
        }
        Publishes += _busyCount;
        for (int band = 0; band < TrafficClass.Bands; band++)
        {
            var members = _bandClasses[band];
            for (int m = 0; m < _bandCount[band]; m++)
            {
                _first[members[m]] = -1;
                _last[members[m]] = -1;
            }
            _bandCount[band] = 0;
        }
    }

    /// <summary>Writes the DSCP into an IPv4 header's TOS byte (ECN kept) and patches the header checksum (RFC 1624).</summary>
    private static void MarkDscp(Span<byte> frame, int tos)
    {
        var ip = frame[EthernetHeader.Size..];
        if (ip.Length < Ipv4Header.Size || (ip[0] >> 4) != 4)
        {
            return;
        }
        byte old = ip[1];
        byte marked = (byte)(tos | (old & 0x03));
        if (old == marked)
        {
            return;
        }
        ip[1] = marked;
        ushort checksum = InternetChecksum.Adjust((ushort)((ip[10] << 8) | ip[11]), (ushort)((ip[0] << 8) | old), (ushort)((ip[0] << 8) | marked));
        ip[10] = (byte)(checksum >> 8);
        ip[11] = (byte)checksum;
    }
}
