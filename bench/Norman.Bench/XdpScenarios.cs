using System.Diagnostics;
using System.Globalization;
using System.Net;
using Norman.Client;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;
using Norman.Daemon.Dataplane.Ports.Xdp;

namespace Norman.Bench;

/// <summary>
/// The real-wire ports side by side, each figure in one run, over a veth between two namespaces:
/// <list type="bullet">
/// <item><b>send</b>: an application sends through Norman's XDP port, Norman's AF_PACKET port, or the kernel's UDP
/// (sendmmsg); the far end of the veth drops and counts every frame in an XDP program (<c>xdp-sink</c>), so only the
/// sending stack is measured;</item>
/// <item><b>receive</b>: one generator (an AF_XDP socket's TX ring, built here, sending prebuilt datagrams) feeds
/// Norman's XDP port, Norman's AF_PACKET port, or the kernel's UDP (recvmmsg); the figure is what the application got.</item>
/// </list>
/// The dataplanes busy-poll; on this 2-core machine the sender, the dataplane and the application share two cores.
/// </summary>
public static class XdpScenarios
{
    private const string SenderAddress = RealWireScenarios.SenderAddress;
    private const string ReceiverAddress = RealWireScenarios.ReceiverAddress;
    private const int Port = 9000;

    public enum Stack
    {
        Xdp,
        AfPacket,
        Kernel,
    }

    public static IEnumerable<Measurement> Run(int runs, bool quick)
    {
        double seconds = quick ? 1 : 2;
        foreach (int frame in new[] { 64, 1500 })
        {
            int payload = Norman.Soak.BenchDaemon.PayloadFor(frame);
            foreach (var stack in Enum.GetValues<Stack>())
            {
                var send = new Measurement($"{Key(stack)}_send_pps_{frame}", $"{Describe(stack)} sending, {frame}-byte frames, to an XDP sink over veth", "pps");
                var receive = new Measurement($"{Key(stack)}_receive_pps_{frame}", $"an AF_XDP generator over veth to {Describe(stack)}, {frame}-byte frames", "pps");
                for (int run = 0; run < runs; run++)
                {
                    send.Add(Send(stack, payload, seconds));
                    receive.Add(Receive(stack, payload, seconds));
                }
                yield return send;
                yield return receive;
            }
        }
    }

    /// <summary>
    /// What the port alone costs the dataplane's core per frame — its Receive or its Transmit called in a loop on one
    /// thread, each call timed by that thread's CPU clock (so a system call's kernel work in it counts; the kernel's copy
    /// into the UMEM on receive runs in the sender's context over veth and does not; receive counts only the calls that
    /// brought frames, over full batches) — beside the engine's own cost per packet, measured in the same run.
    /// </summary>
    public static IEnumerable<Measurement> PortCost(int runs, bool quick)
    {
        double seconds = quick ? 1 : 2;
        var engine = new Measurement("engine_ns_per_packet_64_beside_ports", "engine alone, one thread: ns per 64-byte packet, peer → RX pipe", "ns");
        var figures = new List<Measurement> { engine };
        foreach (var stack in new[] { Stack.Xdp, Stack.AfPacket })
        {
            string kind = stack == Stack.Xdp ? "xdp" : "afpacket";
            var receive = new Measurement($"norman_{kind}_port_receive_ns_per_frame_64", $"the {kind} port's Receive alone, ns of its core per 64-byte frame", "ns");
            var send = new Measurement($"norman_{kind}_port_send_ns_per_frame_64", $"the {kind} port's Transmit alone, ns of its core per 64-byte frame", "ns");
            for (int run = 0; run < runs; run++)
            {
                receive.Add(PortAlone(kind, receive: true, seconds));
                send.Add(PortAlone(kind, receive: false, seconds));
            }
            figures.AddRange([receive, send]);
        }
        for (int run = 0; run < runs; run++)
        {
            engine.Add(EngineOnlyScenario.CompareCapture(quick ? 1_000_000 : 4_000_000, 8, null, tappedFirst: false).AloneNs);
        }
        return figures;
    }

    private static double PortAlone(string kind, bool receive, double seconds)
    {
        using var wire = new Veth();
        string self = Environment.ProcessPath!;
        int payload = Norman.Soak.BenchDaemon.PayloadFor(64);
        if (receive)
        {
            using var port = RealWireScenarios.Start(wire.Receiver, self, "port-alone", "receive", kind, wire.ReceiverDevice, wire.ReceiverMac, wire.SenderMac,
                Text(seconds + 1));
            if (port.StandardOutput.ReadLine() != "ready")
            {
                throw new InvalidOperationException($"the {kind} port did not start");
            }
            using var generator = RealWireScenarios.Start(wire.Sender, self, "xsk-send", wire.SenderDevice, wire.SenderMac, wire.ReceiverMac, SenderAddress,
                RealWireScenarios.NormanAddress, Text(Port), Text(payload), Text(seconds));
            generator.StandardOutput.ReadToEnd();
            generator.WaitForExit();
            return PortFigure(kind, "receive", port);
        }
        using var sink = RealWireScenarios.Start(wire.Receiver, self, "xdp-sink", wire.ReceiverDevice);
        if (sink.StandardOutput.ReadLine() != "ready")
        {
            throw new InvalidOperationException("the XDP sink did not start");
        }
        using var sender = RealWireScenarios.Start(wire.Sender, self, "port-alone", "send", kind, wire.SenderDevice, wire.SenderMac, wire.ReceiverMac,
            Text(seconds));
        double figure = PortFigure(kind, "send", sender);
        sink.StandardInput.Close();
        Console.Error.WriteLine($"    the sink: {sink.StandardOutput.ReadToEnd().Trim()}");
        sink.WaitForExit();
        return figure;
    }

    private static double PortFigure(string kind, string direction, Process port)
    {
        // "frames N cpu_ns M"
        var words = port.StandardOutput.ReadToEnd().Trim().Split(' ');
        port.WaitForExit();
        long frames = long.Parse(words[1], CultureInfo.InvariantCulture);
        long nanoseconds = long.Parse(words[3], CultureInfo.InvariantCulture);
        Console.Error.WriteLine($"  {kind} port {direction} alone: {frames:N0} frames, {nanoseconds / 1e6:N0} ms of its thread");
        return (double)nanoseconds / Math.Max(1, frames);
    }

    /// <summary>
    /// <c>port-alone receive|send xdp|afpacket DEVICE OURMAC THEIRMAC SECONDS</c>: one port, its Receive (frames from the
    /// generator) or its Transmit (64-byte datagrams to the other end) in a loop; prints "frames N cpu_ns M".
    /// </summary>
    public static void PortAlone(string direction, string kind, string device, string ourMac, string theirMac, double seconds)
    {
        IPort port = kind == "xdp"
            ? new XdpPort(device, NetAddress.Parse(RealWireScenarios.NormanAddress), [], sharedAddress: false, lineRateBitsPerSecond: 0)
            : new AfPacketPort(device, 0);
        using (port)
        {
            var batch = new PacketBatch();
            int payload = Norman.Soak.BenchDaemon.PayloadFor(64);
            long frames = 0;
            if (direction == "send")
            {
                for (int i = 0; i < PacketBatch.Capacity; i++)
                {
                    var buffer = batch.NextBuffer();
                    EthernetHeader.Write(buffer, MacAddress.Parse(theirMac), MacAddress.Parse(ourMac), EtherTypes.IPv4);
                    batch.Append(EthernetHeader.Size + UdpPacketBuilder.WriteHeaders(buffer[EthernetHeader.Size..], NetAddress.Parse(RealWireScenarios.NormanAddress),
                        40000, NetAddress.Parse(ReceiverAddress), Port, payload));
                }
            }
            else
            {
                Console.WriteLine("ready");
                Console.Out.Flush();
            }
            long busy = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                long now = Stopwatch.GetTimestamp();
                long cpu = ThreadCpuClock.Nanoseconds();
                if (direction == "send")
                {
                    frames += PacketBatch.Capacity - port.Transmit(batch, now);
                    busy += ThreadCpuClock.Nanoseconds() - cpu;
                    continue;
                }
                batch.Clear();
                int received = port.Receive(batch, now);
                if (received > 0)
                {
                    // Only calls that brought frames count: the port is faster than the generator, and its empty polls
                    // are the idle loop's, not a frame's.
                    busy += ThreadCpuClock.Nanoseconds() - cpu;
                    frames += received;
                }
                if (received < PacketBatch.Capacity)
                {
                    Thread.Sleep(1); // let a batch's worth gather, so that calls are timed over full batches, as under load
                }
            }
            Console.WriteLine($"frames {frames} cpu_ns {busy}");
        }
    }

    private static string Key(Stack stack) => stack switch { Stack.Xdp => "norman_xdp", Stack.AfPacket => "norman_afpacket", _ => "kernel_udp" };

    private static string Describe(Stack stack) => stack switch
    {
        Stack.Xdp => "a Norman application through the XDP port (native, copy)",
        Stack.AfPacket => "a Norman application through the AF_PACKET port",
        _ => "the kernel's UDP",
    };

    /// <summary>Datagrams a second that left <paramref name="stack"/> and reached the far end's counting XDP program.</summary>
    private static double Send(Stack stack, int payload, double seconds)
    {
        using var wire = new Veth();
        using var sink = RealWireScenarios.Start(wire.Receiver, Environment.ProcessPath!, "xdp-sink", wire.ReceiverDevice);
        if (sink.StandardOutput.ReadLine() != "ready")
        {
            throw new InvalidOperationException("the XDP sink did not start");
        }
        string mac = wire.ReceiverMac;
        if (stack == Stack.Kernel)
        {
            // The sink answers no ARP: the kernel is told the receiver's MAC, as Norman is.
            RealWireScenarios.Ip("-n", wire.Sender, "neigh", "replace", ReceiverAddress, "lladdr", mac, "dev", wire.SenderDevice);
        }
        using var sender = stack == Stack.Kernel
            ? RealWireScenarios.Start(wire.Sender, Environment.ProcessPath!, "kernel-send", wire.SenderDevice, ReceiverAddress, Text(Port), Text(payload), Text(seconds))
            : RealWireScenarios.Start(wire.Sender, Environment.ProcessPath!, "norman-send", wire.SenderDevice, ReceiverAddress, Text(Port), Text(payload),
                Text(seconds), stack == Stack.Xdp ? "xdp" : "afpacket", mac);
        string sent = sender.StandardOutput.ReadToEnd();
        sender.WaitForExit();
        sink.StandardInput.Close();
        string counted = sink.StandardOutput.ReadToEnd();
        sink.WaitForExit();
        long frames = long.Parse(counted.Split(' ')[1], CultureInfo.InvariantCulture);
        Console.Error.WriteLine($"  send {stack}: {sent.Trim()}; the sink counted {frames:N0}");
        return frames / seconds;
    }

    /// <summary>Datagrams a second the application on <paramref name="stack"/> received from the generator.</summary>
    private static double Receive(Stack stack, int payload, double seconds)
    {
        using var wire = new Veth();
        string self = Environment.ProcessPath!;
        string destination = stack == Stack.Kernel ? ReceiverAddress : RealWireScenarios.NormanAddress;
        using var receiver = stack == Stack.Kernel
            ? RealWireScenarios.Start(wire.Receiver, self, "kernel-recv", Text(Port), Text(seconds + 1.5))
            : RealWireScenarios.Start(wire.Receiver, self, "norman-recv", wire.ReceiverDevice, stack == Stack.Xdp ? "xdp" : "afpacket",
                destination, Text(Port), Text(seconds + 1.5), wire.ReceiverMac);
        if (receiver.StandardOutput.ReadLine() != "ready")
        {
            throw new InvalidOperationException($"the {stack} receiver did not start");
        }
        using var generator = RealWireScenarios.Start(wire.Sender, self, "xsk-send", wire.SenderDevice, wire.SenderMac, wire.ReceiverMac, SenderAddress,
            destination, Text(Port), Text(payload), Text(seconds));
        string sent = generator.StandardOutput.ReadToEnd();
        generator.WaitForExit();
        // Norman's figure is what its dataplane took off the port (each frame parsed, filtered and delivered into the
        // socket's pipe, or counted dropped there when the application, sharing two cores with it and the generator,
        // fell behind); the kernel's is what its application received.
        string received = receiver.StandardOutput.ReadToEnd();
        receiver.WaitForExit();
        long count = long.Parse(received.Split(' ')[1], CultureInfo.InvariantCulture);
        Console.Error.WriteLine($"  receive {stack}: {sent.Trim()}; {received.Trim()}");
        return count / seconds;
    }

    // ---------------- The processes, each in its namespace ----------------

    /// <summary>
    /// <c>xdp-sink DEVICE</c>: an XDP program on the device that counts and drops every frame; prints "ready", then, when
    /// stdin closes, "counted N".
    /// </summary>
    public static unsafe void Sink(string device)
    {
        int counts = Bpf.CreateMap(Bpf.MapTypeArray, sizeof(uint), sizeof(ulong), 1, "bench_sink");
        var asm = new BpfAssembler();
        asm.StoreImm(BpfAssembler.Size.Word, 10, -4, 0);
        asm.LoadMap(1, counts);
        asm.Mov(2, 10);
        asm.AddImm(2, -4);
        asm.CallHelper(1); // map_lookup_elem
        asm.JumpIfZero(0, "drop");
        asm.MovImm(1, 1);
        asm.AtomicAdd64(0, 0, 1);
        asm.Label("drop");
        asm.MovImm(0, 1); // XDP_DROP
        asm.Return();
        int program = Bpf.LoadXdpProgram(asm.Assemble(), "bench_sink");
        int link = Bpf.AttachXdp(program, Interfaces.Index(device, "the sink"), Bpf.XdpFlagsDriverMode);
        if (link < 0)
        {
            throw new InvalidOperationException($"attaching the sink failed: errno {-link}");
        }
        Console.WriteLine("ready");
        Console.Out.Flush();
        Console.In.ReadToEnd();
        uint key = 0;
        ulong count = 0;
        Bpf.LookupElement(counts, &key, &count);
        Console.WriteLine($"counted {count}");
    }

    /// <summary><c>xsk-send DEVICE SRCMAC DSTMAC SRC DST PORT PAYLOAD SECONDS</c>: prebuilt datagrams through an AF_XDP socket's TX ring; prints "sent N".</summary>
    public static void Generate(string device, string sourceMac, string destinationMac, string source, string destination, int port, int payload,
        double seconds)
    {
        using var socket = new XskSocket(Interfaces.Index(device, "the generator"), 0, device);
        var frames = new byte[16][];
        for (int i = 0; i < frames.Length; i++)
        {
            // Sixteen source ports: a receiver that spreads flows may; none here has more than one queue.
            var frame = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + payload];
            EthernetHeader.Write(frame, MacAddress.Parse(destinationMac), MacAddress.Parse(sourceMac), EtherTypes.IPv4);
            UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), NetAddress.Parse(source), (ushort)(40000 + i), NetAddress.Parse(destination),
                (ushort)port, payload);
            frames[i] = frame;
        }
        long sent = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            uint producer = socket.BeginTransmit();
            for (int i = 0; i < 32 && socket.TryQueue(frames[(int)(sent & 15)], ref producer); i++)
            {
                sent++;
            }
            socket.EndTransmit(producer);
        }
        Console.WriteLine($"sent {sent}");
    }

    /// <summary>
    /// <c>norman-recv DEVICE xdp|afpacket ADDRESS PORT SECONDS MAC</c>: a daemon on the device and an application thread
    /// draining one socket; prints "ready", then "received N".
    /// </summary>
    public static void NormanReceive(string device, string kind, string address, int port, double seconds, string mac)
    {
        Norman.Soak.BenchDaemon.With((daemon, unused) =>
        {
            using var socket = new NormanUdpSocket(daemon.SocketPath);
            socket.Bind(port);
            Console.WriteLine("ready");
            Console.Out.Flush();
            long received = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                while (socket.TryPeek(out _))
                {
                    socket.Release();
                    received++;
                }
            }
            var counters = daemon.Engine.Counters.Snapshot();
            (daemon.Engine.Port as IPortStatistics)?.AddCounters(counters);
            Console.WriteLine($"taken {daemon.Engine.Counters.PortRxPackets} (the application got {received}; " +
                string.Join(", ", counters.Where(c => c.Value > 0 && (c.Key.StartsWith("drop", StringComparison.Ordinal) || c.Key.StartsWith("xdp", StringComparison.Ordinal)))
                    .Select(c => $"{c.Key} {c.Value}")) + ")");
            return received;
        }, options => (options.Port, options.Address, options.Mac) = ($"{kind}:{device}", $"{address}/24", mac));
    }

    private static string Text(double value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Two namespaces joined by a veth, addressed and up, removed on dispose.</summary>
    private sealed class Veth : IDisposable
    {
        public Veth()
        {
            string id = Guid.NewGuid().ToString("N")[..6];
            (Sender, Receiver) = ($"nrmx-s-{id}", $"nrmx-r-{id}");
            (SenderDevice, ReceiverDevice) = ($"nrmx{id}s", $"nrmx{id}r");
            foreach (var command in new[]
            {
                new[] { "netns", "add", Sender }, ["netns", "add", Receiver],
                ["link", "add", SenderDevice, "netns", Sender, "type", "veth", "peer", "name", ReceiverDevice, "netns", Receiver],
                ["-n", Sender, "addr", "add", $"{SenderAddress}/24", "dev", SenderDevice],
                ["-n", Receiver, "addr", "add", $"{ReceiverAddress}/24", "dev", ReceiverDevice],
                ["-n", Sender, "link", "set", SenderDevice, "up"], ["-n", Receiver, "link", "set", ReceiverDevice, "up"],
            })
            {
                RealWireScenarios.Ip(command);
            }
            SenderMac = Mac(Sender, SenderDevice);
            ReceiverMac = Mac(Receiver, ReceiverDevice);
        }

        public string Sender { get; }
        public string Receiver { get; }
        public string SenderDevice { get; }
        public string ReceiverDevice { get; }
        public string SenderMac { get; }
        public string ReceiverMac { get; }

        private static string Mac(string ns, string device)
        {
            using var process = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", ns, "cat", $"/sys/class/net/{device}/address"])
                { RedirectStandardOutput = true })!;
            string mac = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return mac;
        }

        public void Dispose()
        {
            RealWireScenarios.Try("netns", "del", Sender);
            RealWireScenarios.Try("netns", "del", Receiver);
        }
    }
}
