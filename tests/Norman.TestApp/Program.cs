// norman-testapp: an application process for the integration tests, honest or hostile on demand.
//   bind PORT            bind, print "bound PORT", hold the socket until stdin closes
//   request HOST PORT N  connect to HOST:PORT, send N numbered datagrams, print "replies R" (R echoed right)
//   hostile PORT N       bind through the raw control protocol, then N rounds of adversarial writes into every
//                        index, length and packet byte of its own pipes (see Hostile), printing "done N: …"
//   forge PORT SPORT     bind PORT through the raw protocol, then send the peer one datagram claiming source
//                        port SPORT and one with its true port
//   sessions N ROUNDS    N applications' worth of sockets, each on its own control connection (16-slot pipes), then
//                        ROUNDS times over: close each and open a new one in its place, sending the peer a datagram
//                        from it; prints "done BINDS" and holds the sockets until stdin closes
//   churn                forever: open a socket on a free port, send the peer 100 datagrams, close it; prints
//                        "cycle N" after each (a test kills it at some point of a cycle)
//   close-race N         N times: bind a TCP socket with 16-slot pipes through the raw protocol, fill its connection
//                        table with a count of 0xffffffff and garbage, close it; prints "done N"
//   scribble PORT        bind TCP PORT through the raw protocol and write a connection table of 0xffffffff records, the
//                        first 32,768 plausible (ESTAB, remote ports 1..32768), and hold it until stdin closes
//   rename NAME PORT     rename its process (as prctl(PR_SET_NAME) does), bind UDP PORT, send the peer (port 9) one
//                        datagram, print "sent", and hold the socket until stdin closes
// Errors print "error CODE: message" and exit 1.
using Norman.Client;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;

try
{
    switch (args[0])
    {
        case "bind":
        {
            using var socket = new NormanUdpSocket();
            socket.Bind(int.Parse(args[1]));
            Console.WriteLine($"bound {socket.LocalPort}");
            Console.Out.Flush();
            Console.In.ReadToEnd();
            return 0;
        }
        case "request":
        {
            // request HOST PORT COUNT: send COUNT datagrams, wait for each reply, print "replies N".
            using var socket = new NormanUdpSocket();
            socket.Connect(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(args[1]), int.Parse(args[2])));
            var buffer = new byte[NormanUdpSocket.MaxPayload];
            int replies = 0;
            for (int i = 0; i < int.Parse(args[3]); i++)
            {
                socket.Send(BitConverter.GetBytes(i));
                int length = socket.Receive(buffer, out _, TimeSpan.FromSeconds(10));
                replies += length == 4 && BitConverter.ToInt32(buffer) == i ? 1 : 0;
            }
            Console.WriteLine($"replies {replies}");
            return 0;
        }
        case "sessions":
        {
            var peer = NetAddress.Parse("198.18.0.2");
            var sockets = new NormanUdpSocket[int.Parse(args[1])];
            int binds = 0;
            for (int round = 0; round <= int.Parse(args[2]); round++)
            {
                for (int i = 0; i < sockets.Length; i++)
                {
                    sockets[i]?.Dispose();
                    sockets[i] = new NormanUdpSocket();
                    sockets[i].Bind(0, slotCount: 16);
                    sockets[i].TrySendTo("churn"u8, peer, 9);
                    binds++;
                }
            }
            Console.WriteLine($"done {binds}");
            Console.Out.Flush();
            Console.In.ReadToEnd();
            return 0;
        }
        case "churn":
        {
            var peer = NetAddress.Parse("198.18.0.2");
            for (long cycle = 1; ; cycle++)
            {
                using (var socket = new NormanUdpSocket())
                {
                    socket.Bind(0);
                    for (int i = 0; i < 100; i++)
                    {
                        socket.TrySendTo(BitConverter.GetBytes(i), peer, 9);
                    }
                }
                Console.WriteLine($"cycle {cycle}");
            }
        }
        case "hostile":
            return Hostile(int.Parse(args[1]), int.Parse(args[2]));
        case "close-race":
            return CloseRace(int.Parse(args[1]));
        case "scribble":
            return Scribble(int.Parse(args[1]));
        case "rename":
        {
            // /proc/self/comm is the main thread's name: what prctl(PR_SET_NAME) sets, and what ss shows.
            File.WriteAllText("/proc/self/comm", args[1]);
            using var socket = new NormanUdpSocket();
            socket.Bind(int.Parse(args[2]));
            socket.TrySendTo("renamed"u8, NetAddress.Parse("198.18.0.2"), 9);
            Console.WriteLine("sent");
            Console.Out.Flush();
            Console.In.ReadToEnd();
            return 0;
        }
        case "forge":
            return Forge(int.Parse(args[1]), ushort.Parse(args[2]));
        default:
            Console.Error.WriteLine($"unknown mode {args[0]}");
            return 2;
    }
}
catch (NormanException error)
{
    Console.WriteLine($"error {error.Code}: {error.Message}");
    return 1;
}

// For ROUNDS rounds, one adversarial act a round on its own pipes: indices (its own and the daemon's, the ring
// descriptors too), slot lengths, noise posted as packets, forged packets (another source port or address, or a
// destination the policy refuses), honest packets rewritten as forged right after they are posted, the RX side's
// slots. Then prints "done ROUNDS" and what it tried, and holds the socket until stdin closes.
static unsafe int Hostile(int port, int rounds)
{
    var (control, grant, region, doorbell) = RawBind(port);
    using var keep = control;
    using var memory = region;
    using var doorbellEnd = doorbell;
    Console.WriteLine($"bound {grant.LocalPort}");
    Console.Out.Flush();
    var random = new Random(port);
    byte* rx = region.Address + PipeLayout.RxRingOffset;
    byte* tx = region.Address + PipeLayout.TxRingOffset;
    byte* rxSlots = region.Address + PipeLayout.RxSlotsOffset;
    byte* txSlots = region.Address + PipeLayout.TxSlotsOffset(grant.SlotCount, grant.SlotSize);
    uint mask = (uint)grant.SlotCount - 1;
    int capacity = PipeLayout.SlotDataCapacity(grant.SlotSize);
    var source = NetAddress.Parse(grant.SourceAddress);
    var peer = NetAddress.Parse("198.18.0.2");
    string[] acts = ["indices", "lengths", "noise posted", "forged posted", "rewritten after posting", "rx side", "length flipped while taken"];
    var tried = new long[acts.Length];
    byte* Slot(byte* ring, uint index) => (ring == rx ? rxSlots : txSlots) + (long)(index & mask) * grant.SlotSize;
    uint[] adversarial = [0, 1, uint.MaxValue, uint.MaxValue - 1, 0x8000_0000, (uint)grant.SlotCount, (uint)grant.SlotCount + 1, (uint)capacity + 1];
    uint Adversarial() => random.Next(2) == 0 ? adversarial[random.Next(adversarial.Length)] : (uint)random.Next() * 2 + (uint)random.Next(2);

    // Writes an honest-looking packet into the daemon's next slot and posts it: the daemon's published consumer
    // index says where (a scribbled one makes the post land nowhere sensible, which is allowed too).
    uint Post(Action<Span<byte>> write, int length)
    {
        uint consumer = Volatile.Read(ref *(uint*)(tx + PipeLayout.ConsumerIndexOffset));
        byte* slot = Slot(tx, consumer);
        write(new Span<byte>(slot + PipeLayout.SlotHeaderSize, capacity));
        *(uint*)(slot + PipeLayout.SlotLengthOffset) = (uint)length;
        Volatile.Write(ref *(uint*)(tx + PipeLayout.ProducerIndexOffset), consumer + 1);
        doorbell.Ring(); // whether or not the daemon asked: rings it has no use for cost it only a wake-up
        return consumer;
    }

    // Gives the daemon a moment to take a posted packet before the next scribble buries it (bounded: it may not). The
    // moment is a millisecond of the clock, not a count of spins, whose length depends on how busy the machine is: on a
    // loaded one tens of thousands of such waits took past the test's two minutes. It yields rather than spins: the
    // post rang a dataplane that may have been asleep, and on two CPUs its thread is often woken onto this one, where
    // a spinning wait would hold it off until the wait was over. Returns whether the packet was taken.
    bool AwaitTaken(uint index, int milliseconds = 1)
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency * milliseconds / 1000;
        while (Volatile.Read(ref *(uint*)(tx + PipeLayout.ConsumerIndexOffset)) == index)
        {
            if (System.Diagnostics.Stopwatch.GetTimestamp() >= until)
            {
                return false;
            }
            Thread.Yield();
        }
        return true;
    }

    // One forged packet: another source port (lie 0), another source address (1), or a destination the policy refuses (2).
    uint PostForged(int lie)
    {
        ushort sourcePort = lie == 0 ? (ushort)random.Next(1, 65536) : (ushort)grant.LocalPort;
        if (sourcePort == grant.LocalPort && lie == 0)
        {
            sourcePort++;
        }
        var from = lie == 1 ? NetAddress.FromV4((uint)random.Next() | 1) : source;
        if (lie == 1 && from == source)
        {
            from = NetAddress.Parse("198.18.0.99");
        }
        ushort destinationPort = lie == 2 ? (ushort)666 : (ushort)9;
        return Post(slot => UdpPacketBuilder.WriteHeaders(slot, from, sourcePort, peer, destinationPort, 16), UdpPacketBuilder.HeaderLengthV4 + 16);
    }

    for (int round = 0; round < rounds; round++)
    {
        int act = random.Next(round % 64 == 0 ? acts.Length : 2);
        tried[act]++;
        switch (act)
        {
            case 0:
            {
                // The daemon's own published indices too, for a moment: it keeps its copies and never reads them back.
                uint txConsumer = *(uint*)(tx + PipeLayout.ConsumerIndexOffset);
                foreach (byte* ring in new[] { rx, tx })
                {
                    *(uint*)(ring + PipeLayout.ProducerIndexOffset) = Adversarial();
                    *(uint*)(ring + PipeLayout.ConsumerIndexOffset) = Adversarial();
                    *(uint*)(ring + PipeLayout.NeedsWakeupOffset) = Adversarial();
                    *(uint*)(ring + PipeLayout.MagicOffset + 4 * random.Next(4)) = Adversarial();
                }
                *(uint*)(tx + PipeLayout.ConsumerIndexOffset) = txConsumer;
                break;
            }
            case 1:
                *(uint*)(Slot(tx, (uint)random.Next()) + PipeLayout.SlotLengthOffset) = Adversarial();
                break;
            case 2:
            {
                int length = random.Next(capacity + 1);
                AwaitTaken(Post(slot => random.NextBytes(slot[..length]), length));
                break;
            }
            case 3:
                AwaitTaken(PostForged(random.Next(3)));
                break;
            case 4:
            {
                // Honest when posted, forged a moment later: the daemon must check the copy it sends, not the pipe.
                uint index = Post(slot => UdpPacketBuilder.WriteHeaders(slot, source, (ushort)grant.LocalPort, peer, 9, 16), UdpPacketBuilder.HeaderLengthV4 + 16);
                byte* packet = Slot(tx, index) + PipeLayout.SlotHeaderSize;
                for (int rewrite = 0; rewrite < 64; rewrite++)
                {
                    *(ushort*)(packet + 20) = (ushort)random.Next();          // the UDP source port
                    *(ushort*)(packet + 22) = rewrite % 2 == 0 ? (ushort)0x9A02 : (ushort)0x0900; // dport 666, or 9
                    packet[12 + random.Next(4)] = (byte)random.Next();        // the source address
                }
                AwaitTaken(index);
                break;
            }
            case 5:
            {
                byte* slot = Slot(rx, (uint)random.Next());
                *(uint*)(slot + PipeLayout.SlotLengthOffset) = Adversarial();
                random.NextBytes(new Span<byte>(slot + PipeLayout.SlotHeaderSize, 64));
                break;
            }
            case 6:
            {
                // A 328-byte datagram of 0xA5 (no UDP checksum, so a wrong tail would still be delivered), whose length
                // field flips between 28 and 328 while the daemon takes it: what leaves must be the slot's own bytes.
                const int full = UdpPacketBuilder.HeaderLengthV4 + 300;
                uint index = Post(slot =>
                {
                    slot[UdpPacketBuilder.HeaderLengthV4..full].Fill(0xA5);
                    UdpPacketBuilder.WriteHeaders(slot, source, (ushort)grant.LocalPort, peer, 9, 300);
                    slot[26] = slot[27] = 0;
                }, full);
                uint* length = (uint*)(Slot(tx, index) + PipeLayout.SlotLengthOffset);
                long until = System.Diagnostics.Stopwatch.GetTimestamp() + System.Diagnostics.Stopwatch.Frequency / 1000;
                while (Volatile.Read(ref *(uint*)(tx + PipeLayout.ConsumerIndexOffset)) == index && System.Diagnostics.Stopwatch.GetTimestamp() < until)
                {
                    Volatile.Write(ref *length, UdpPacketBuilder.HeaderLengthV4);
                    Volatile.Write(ref *length, full);
                }
                break;
            }
        }
    }
    // Last, one of each refusable kind posted on a quiet pipe and waited for (up to ten seconds each): whether the storm's
    // posts were taken before the next scribble buried them depends on how the scheduler placed two busy processes,
    // and the test asks the daemon to have refused every kind at least once, not the scheduler to have been kind.
    var lastPosts = new (string Kind, Func<uint> Post)[]
    {
        ("forged port", () => PostForged(0)),
        ("forged address", () => PostForged(1)),
        ("refused destination", () => PostForged(2)),
        ("noise", () => Post(slot => slot[..8].Fill(0x45), 8)),
        ("corrupt length", () => Post(_ => { }, capacity + 1)),
    };
    var untaken = lastPosts.Where(last => !AwaitTaken(last.Post(), milliseconds: 10_000)).Select(last => last.Kind).ToList();
    Console.WriteLine($"done {rounds}: " + string.Join(", ", acts.Select((name, i) => $"{name} {tried[i]}")) +
        (untaken.Count == 0 ? "" : $"; never taken: {string.Join(", ", untaken)}"));
    Console.Out.Flush();
    Console.In.ReadToEnd();
    return 0;
}

static unsafe int Forge(int port, ushort forgedPort)
{
    // The raw protocol, as a hostile program would use it: the library would never write a wrong source port.
    var (control, grant, region, doorbell) = RawBind(port);
    using var keep = control;
    using var memory = region;
    using var doorbellEnd = doorbell;
    var tx = new RingProducer(region.Address + PipeLayout.TxRingOffset, region.Address + PipeLayout.TxSlotsOffset(grant.SlotCount, grant.SlotSize),
        grant.SlotCount, grant.SlotSize);
    var source = NetAddress.Parse(grant.SourceAddress);
    var peer = NetAddress.Parse("198.18.0.2");
    foreach (ushort sourcePort in new[] { forgedPort, (ushort)grant.LocalPort })
    {
        var slot = tx.Claim();
        "forged"u8.CopyTo(slot[UdpPacketBuilder.HeaderLengthV4..]);
        tx.Commit(UdpPacketBuilder.WriteHeaders(slot, source, sourcePort, peer, 9000, 6));
    }
    tx.Publish();
    if (tx.TakeWakeupRequest())
    {
        doorbell.Ring();
    }
    Console.WriteLine("sent one forged and one honest datagram");
    Console.Out.Flush();
    Console.In.ReadToEnd();
    return 0;
}

// Binds and closes TCP sockets as fast as it can, each time leaving garbage in its connection table for the daemon's
// listings to read while the close unmaps it.
static unsafe int CloseRace(int rounds)
{
    using var control = ControlChannel.Connect();
    var random = new Random(rounds);
    for (int round = 0; round < rounds; round++)
    {
        var fds = new List<int>();
        var grant = control.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "tcp", Port = 0, SlotCount = 16 }, fds).Socket!;
        using (var region = SharedMemory.Map(fds[0], grant.RegionBytes))
        {
            FdPassing.CloseAll(fds.Skip(1).ToList());
            byte* table = region.Address + ConnectionTable.Offset(grant.SlotCount, grant.SlotSize);
            random.NextBytes(new Span<byte>(table + ConnectionTable.HeaderSize, 4096));
            ConnectionTable.Publish(table, -1);
            control.Call(new ControlRequest { Op = ControlProtocol.Ops.Close, SocketId = grant.SocketId });
        }
    }
    Console.WriteLine($"done {rounds}");
    return 0;
}

// A TCP socket whose connection table claims 0xffffffff connections: the daemon reads at most its capacity, 32,768,
// all plausible here, which no single answer of 16 MiB could carry.
static unsafe int Scribble(int port)
{
    var (control, grant, region, doorbell) = RawBind(port, "tcp");
    using var keep = control;
    using var memory = region;
    using var doorbellEnd = doorbell;
    byte* table = region.Address + ConnectionTable.Offset(grant.SlotCount, grant.SlotSize);
    for (int i = 0; i < ConnectionTable.Capacity; i++)
    {
        ConnectionTable.Write(table, i, new ConnectionTable.Record(NetAddress.Parse("198.18.0.2"), (ushort)(i + 1), 3, 0, 0));
    }
    ConnectionTable.Publish(table, -1);
    Console.WriteLine($"bound {grant.LocalPort}");
    Console.Out.Flush();
    Console.In.ReadToEnd();
    return 0;
}

// Binds through the raw control protocol and maps the pipes, as a program that does not use the library would.
static (ControlChannel Control, SocketGrant Grant, SharedMemory Region, Doorbell Doorbell) RawBind(int port, string protocol = "udp")
{
    var control = ControlChannel.Connect();
    var fds = new List<int>();
    var grant = control.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = protocol, Port = port }, fds).Socket!;
    var region = SharedMemory.Map(fds[0], grant.RegionBytes);
    new Microsoft.Win32.SafeHandles.SafeFileHandle(fds[1], ownsHandle: true).Dispose();
    foreach (int unused in fds.Skip(3))
    {
        new Microsoft.Win32.SafeHandles.SafeFileHandle(unused, ownsHandle: true).Dispose(); // the ready map: this program never marks
    }
    return (control, grant, region, Doorbell.Adopt(fds[2]));
}
