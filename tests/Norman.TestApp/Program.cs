// norman-testapp: an application process for the integration tests, honest or hostile on demand.
//   bind PORT            bind, print "bound PORT", hold the socket until stdin closes
//   request HOST PORT N  connect to HOST:PORT, send N numbered datagrams, print "replies R" (R echoed right)
//   hostile PORT N       bind through the raw control protocol, then write N rounds of garbage into every
//                        index and length of its own pipes, printing "done N"
//   forge PORT SPORT     bind PORT through the raw protocol, then send the peer one datagram claiming source
//                        port SPORT and one with its true port
//   churn                forever: open a socket on a free port, send the peer 100 datagrams, close it; prints
//                        "cycle N" after each (a test kills it at some point of a cycle)
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

static unsafe int Hostile(int port, int rounds)
{
    var (control, grant, region) = RawBind(port);
    using var keep = control;
    using var memory = region;
    Console.WriteLine($"bound {grant.LocalPort}");
    Console.Out.Flush();
    var random = new Random(port);
    long ringBytes = PipeLayout.RingBytes(grant.SlotCount, grant.SlotSize);
    for (int round = 0; round < rounds; round++)
    {
        foreach (long ring in new[] { 0L, ringBytes })
        {
            byte* start = region.Address + ring;
            *(uint*)(start + PipeLayout.ProducerIndexOffset) = (uint)random.Next() * (uint)(round % 3);
            *(uint*)(start + PipeLayout.ConsumerIndexOffset) = (uint)random.Next();
            *(uint*)(start + PipeLayout.NeedsWakeupOffset) = (uint)random.Next(2);
            int slot = random.Next(grant.SlotCount);
            byte* slotAddress = start + PipeLayout.SlotsOffset + (long)slot * grant.SlotSize;
            *(uint*)slotAddress = random.Next(4) == 0 ? (uint)random.Next() : (uint)random.Next(grant.SlotSize);
            random.NextBytes(new Span<byte>(slotAddress + PipeLayout.SlotHeaderSize, 64));
        }
    }
    Console.WriteLine($"done {rounds}");
    Console.Out.Flush();
    Console.In.ReadToEnd();
    return 0;
}

static unsafe int Forge(int port, ushort forgedPort)
{
    // The raw protocol, as a hostile program would use it: the library would never write a wrong source port.
    var (control, grant, region) = RawBind(port);
    using var keep = control;
    using var memory = region;
    var tx = new RingProducer(region.Address + PipeLayout.TxRingOffset(grant.SlotCount, grant.SlotSize), grant.SlotCount, grant.SlotSize);
    var source = NetAddress.Parse(grant.SourceAddress);
    var peer = NetAddress.Parse("198.18.0.2");
    foreach (ushort sourcePort in new[] { forgedPort, (ushort)grant.LocalPort })
    {
        var slot = tx.Claim();
        "forged"u8.CopyTo(slot[UdpPacketBuilder.HeaderLengthV4..]);
        tx.Commit(UdpPacketBuilder.WriteHeaders(slot, source, sourcePort, peer, 9000, 6));
    }
    tx.Publish();
    Console.WriteLine("sent one forged and one honest datagram");
    Console.Out.Flush();
    Console.In.ReadToEnd();
    return 0;
}

// Binds through the raw control protocol and maps the pipes, as a program that does not use the library would.
static (ControlChannel Control, SocketGrant Grant, SharedMemory Region) RawBind(int port)
{
    var control = ControlChannel.Connect();
    var fds = new List<int>();
    var grant = control.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "udp", Port = port }, fds).Socket!;
    var region = SharedMemory.Map(fds[0], grant.RegionBytes);
    new Microsoft.Win32.SafeHandles.SafeFileHandle(fds[1], ownsHandle: true).Dispose();
    return (control, grant, region);
}
