using System.Diagnostics;
using System.Text;
using Norman.Cli.Capture;
using Norman.Client;
using Norman.Core.Capture;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Integration.Tests;

/// <summary>`norman capture` against a daemon, its files read by the real tcpdump and tshark.</summary>
public sealed class CaptureTests : DaemonTest
{
    [Fact]
    public async Task Files_open_in_tcpdump_and_tshark_with_every_payload_and_the_application_in_pcapng_comments()
    {
        using var echo = Daemon.Start("echo-server", "7000");
        echo.ReadLine();
        string pcap = Path.Combine(Daemon.Directory, "echo.pcap");
        string pcapng = Path.Combine(Daemon.Directory, "echo.pcapng");
        using var plain = StartCapture("-c", "6", "-w", pcap, "udp", "port", "7000");
        using var tagged = StartCapture("-c", "6", "-w", pcapng, "--pcapng", "udp", "port", "7000");
        var payloads = new[] { "first", "second", new string('x', 1400) };
        foreach (var payload in payloads)
        {
            Daemon.Peer.SendUdp(40000, 7000, Encoding.ASCII.GetBytes(payload));
            Assert.NotNull(Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10)));
        }
        string summary = await FinishAsync(plain);
        await FinishAsync(tagged);
        Assert.Contains("6 packets captured", summary);
        Assert.Contains("0 packets dropped by kernel", summary);

        var (code, output, errors) = Host.Try(null, "tcpdump", "-n", "-r", pcap);
        Assert.Equal(0, code);
        Assert.Equal(6, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.DoesNotContain("warning", errors, StringComparison.OrdinalIgnoreCase);
        string fields = Host.Run("tshark", "-r", pcapng, "-T", "fields", "-e", "frame.comment", "-e", "udp.payload", "-e", "frame.p2p_dir");
        var rows = fields.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, rows.Length);
        Assert.All(rows, row => Assert.StartsWith($"app=echo-server pid={echo.Pid} uid=", row));
        foreach (var payload in payloads)
        {
            Assert.Equal(2, rows.Count(r => r.Contains(Convert.ToHexString(Encoding.ASCII.GetBytes(payload)).ToLowerInvariant(), StringComparison.Ordinal)));
        }
        var check = Host.Try(null, "tshark", "-r", pcapng, "-o", "udp.check_checksum:TRUE", "-Y", "udp.checksum.status == 0 || _ws.malformed");
        Assert.Equal("", check.Output.Trim());
    }

    [Fact]
    public async Task Text_lines_read_like_tcpdumps_and_name_the_application()
    {
        using var echo = Daemon.Start("echo-server", "7000");
        echo.ReadLine();
        using var capture = StartCapture("-c", "2", "-i", "ingress");
        Daemon.Peer.SendUdp(40000, 7000, "hello"u8);
        Daemon.Peer.SendPing(1, 1, "ping"u8);
        string output = await capture.StandardOutput.ReadToEndAsync();
        await capture.WaitForExitAsync();
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{6} IP 198\.18\.0\.2\.40000 > 198\.18\.0\.1\.7000: UDP, length 5 \(app echo-server pid \d+ uid \d+\)", output);
        Assert.Contains("IP 198.18.0.2 > 198.18.0.1: ICMP echo request, length 12", output);
    }

    [Fact]
    public async Task Ctrl_C_ends_a_capture_with_tcpdumps_summary()
    {
        using var echo = Daemon.Start("echo-server", "7000");
        echo.ReadLine();
        using var capture = StartCapture("-i", "ingress", "udp");
        for (int i = 0; i < 3; i++)
        {
            Daemon.Peer.SendUdp(40000, 7000, "hello"u8);
            Assert.NotNull(await capture.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        }
        // SIGINT, as Ctrl-C sends it: the capture stops, prints the summary and exits as tcpdump does.
        using (var interrupt = Process.Start("kill", ["-INT", capture.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await interrupt.WaitForExitAsync();
        }
        string errors = await capture.StandardError.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await capture.WaitForExitAsync();
        Assert.Contains("3 packets captured", errors);
        Assert.Contains("0 packets dropped by kernel", errors);
        Assert.Equal(0, capture.ExitCode);
    }

    [Fact]
    public async Task A_pcap_stream_on_standard_output_is_read_by_tcpdump_and_p_app_keeps_one_application()
    {
        using var echo = Daemon.Start("echo-server", "7000");
        using var database = Daemon.Start("kvdb", "6379");
        echo.ReadLine();
        database.ReadLine();
        string file = Path.Combine(Daemon.Directory, "stream.pcap");
        // norman capture -w - | tcpdump -r -, through a shell pipe as a user types it.
        string norman = AppProcess.BesideTests("norman");
        var start = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"'{norman}' capture --timeout 30 -c 2 -p app=kvdb -w - | tcpdump -n -r - -w '{file}'");
        start.Environment["NORMAN_SOCKET"] = Daemon.SocketPath;
        using var pipeline = Process.Start(start)!;
        Assert.True(ApplicationProcessTests.WaitFor(() => Daemon.Daemon.Engine.TapCount == 1));
        Daemon.Peer.SendUdp(40000, 7000, "to echo"u8);
        Daemon.Peer.SendUdp(40000, 6379, "GET x"u8);
        await pipeline.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(0, pipeline.ExitCode);

        var frames = ReadPcap(file);
        Assert.Equal(2, frames.Count);
        Assert.All(frames, frame =>
        {
            PacketParser.Parse(frame, out var packet);
            Assert.True(packet.DestinationPort == 6379 || packet.SourcePort == 6379, "a packet that is not kvdb's was captured");
        });
    }

    [RootFact]
    public async Task An_ordinary_user_captures_only_their_own_applications()
    {
        using var rootsEcho = Daemon.Start("echo-server", "7000");
        rootsEcho.ReadLine();
        using var nobodysEcho = AppProcess.Start("echo-server", Daemon.SocketPath, "65534", "7001");
        nobodysEcho.ReadLine();
        using var capture = AppProcess.Start("norman", Daemon.SocketPath, "65534", "capture", "--timeout", "30", "-c", "2", "udp");
        Assert.True(ApplicationProcessTests.WaitFor(() => Daemon.Daemon.Engine.TapCount == 1));
        Daemon.Peer.SendUdp(40000, 7000, "root's"u8);
        Daemon.Peer.SendUdp(40000, 7001, "nobody's"u8);
        string output = await capture.Process.StandardOutput.ReadToEndAsync();
        Assert.DoesNotContain(".7000:", output);
        Assert.Contains("198.18.0.1.7001: UDP", output);
        Assert.Contains("198.18.0.1.7001 > 198.18.0.2.40000: UDP", output);
    }

    [Fact]
    public async Task A_capture_before_the_filter_marks_what_it_dropped_and_one_after_the_filter_does_not_see_it()
    {
        using var open = Daemon.Start("echo-server", "7001");
        open.ReadLine();
        Daemon.Daemon.Policy.Add(global::Norman.Daemon.Policy.Chain.Ingress, ["udp", "dport", "7000", "drop"]);
        string pcapng = Path.Combine(Daemon.Directory, "marked.pcapng");
        using var before = StartCapture("-c", "1", "-i", "ingress", "--pcapng", "-w", pcapng, "udp", "port", "7000");
        using var beforeText = StartCapture("-c", "1", "-i", "ingress", "udp", "port", "7000");
        using var after = StartCapture("-c", "1", "-i", "ingress", "--after-filter", "udp");
        Daemon.Peer.SendUdp(40000, 7000, "blocked"u8);
        Daemon.Peer.SendUdp(40000, 7001, "allowed"u8);
        await FinishAsync(before);
        string marked = await beforeText.StandardOutput.ReadToEndAsync();
        string passed = await after.StandardOutput.ReadToEndAsync();

        Assert.Contains("198.18.0.1.7000: UDP, length 7 [dropped by rule 1]", marked);
        Assert.Contains("198.18.0.1.7001: UDP, length 7", passed);
        Assert.DoesNotContain(".7000:", passed);
        Assert.Contains("verdict=drop rule=1", Host.Run("tshark", "-r", pcapng, "-T", "fields", "-e", "frame.comment"));
    }

    [Fact]
    public async Task An_egress_capture_records_what_the_egress_filter_stopped_as_a_frame_tcpdump_reads()
    {
        using var echo = Daemon.Start("echo-server", "5500");
        echo.ReadLine();
        Daemon.Daemon.Policy.Add(global::Norman.Daemon.Policy.Chain.Egress, ["app", "echo-server", "drop"]);
        string pcap = Path.Combine(Daemon.Directory, "egress.pcap");
        using var capture = StartCapture("-c", "1", "-i", "egress", "-w", pcap, "udp");
        Daemon.Peer.SendUdp(40000, 5500, "echo me"u8);
        await FinishAsync(capture);
        Assert.Null(Daemon.Peer.TakeDatagram(TimeSpan.FromMilliseconds(200))); // the filter stopped the echo
        // It never reached the wire, so it has no next hop: the destination MAC is zero, the source ours.
        var (code, output, errors) = Host.Try(null, "tcpdump", "-n", "-e", "-r", pcap);
        Assert.True(code == 0, errors);
        Assert.Contains($"{Daemon.Daemon.Engine.Host.Mac} > 00:00:00:00:00:00, ethertype IPv4 (0x0800)", output);
        Assert.Contains("198.18.0.1.5500 > 198.18.0.2.40000: UDP, length 7", output); // (not port 7000-7009: tcpdump reads those as AFS)
    }

    [Fact]
    public async Task A_capture_at_the_port_sees_every_frame_as_it_arrived_and_why_the_dataplane_dropped_it()
    {
        string pcapng = Path.Combine(Daemon.Directory, "port.pcapng");
        using var atPort = StartCapture("-c", "4", "-i", "port", "--pcapng", "-w", pcapng, "udp", "or", "vlan");
        using var lines = StartCapture("-c", "4", "-i", "port", "udp", "or", "vlan");
        using var onPath = StartCapture("-c", "1", "-i", "ingress", "udp", "or", "vlan");
        var host = Daemon.Daemon.Engine.Host.Mac;
        Daemon.Peer.SendFrame(UdpFrame(host, 7301, good: false));                       // a wrong UDP checksum
        Daemon.Peer.SendFrame(UdpFrame(MacAddress.Parse("02:00:00:00:99:99"), 7302));  // for another host's MAC
        Daemon.Peer.SendFrame(VlanTagged(UdpFrame(host, 7303), 7));                     // tagged, and no VLAN here
        Daemon.Peer.SendFrame(UdpFrame(host, 7304));                                    // good, and no socket on the port
        await FinishAsync(atPort);
        await FinishAsync(onPath);
        string text = await lines.StandardOutput.ReadToEndAsync();

        string comments = Host.Run("tshark", "-r", pcapng, "-T", "fields", "-e", "udp.dstport", "-e", "frame.comment");
        Assert.Contains("7301\tno socket (host traffic) dropped=bad_udp_checksum", comments);
        Assert.Contains("7302\tno socket (host traffic) dropped=not_for_this_host", comments);
        Assert.Contains("7303\tno socket (host traffic) dropped=vlan_not_configured", comments);
        Assert.Contains("7304\tno socket (host traffic) dropped=no_socket", comments);
        Assert.Contains("198.18.0.1.7301: UDP, length 4 [dropped: bad_udp_checksum]", text);
        // On the path, after parsing and the checks before the filter, only the last one is left to see.
        string pathLine = await onPath.StandardOutput.ReadToEndAsync();
        Assert.Contains("198.18.0.1.7304: UDP", pathLine);
    }

    [Fact]
    public async Task A_capture_piped_into_head_ends_when_head_does()
    {
        // norman capture | head -2, as an administrator types it: the capture must end on the broken pipe, as tcpdump does.
        var start = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"'{AppProcess.BesideTests("norman")}' capture -i port udp | head -2");
        start.Environment["NORMAN_SOCKET"] = Daemon.SocketPath;
        using var pipeline = Process.Start(start)!;
        Assert.True(ApplicationProcessTests.WaitFor(() => TapCount() > _taps), "the capture never started");
        _taps = TapCount();
        var deadline = Stopwatch.StartNew();
        while (!pipeline.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            // Traffic until the pipeline ends: the capture only learns that head left when it next writes.
            Daemon.Peer.SendUdp(40000, 7310, "more"u8);
            pipeline.WaitForExit(TimeSpan.FromMilliseconds(20));
        }
        Assert.True(pipeline.HasExited, "norman capture | head -2 did not end within 30 s of traffic");
        string output = await pipeline.StandardOutput.ReadToEndAsync();
        Assert.Equal(2, output.Split('\n').Count(l => l.Contains("UDP, length 4", StringComparison.Ordinal)));
        Assert.True(ApplicationProcessTests.WaitFor(() => TapCount() < _taps), "the daemon still holds the capture");
        _taps = TapCount();
    }

    [Fact]
    public async Task A_file_that_cannot_be_written_is_a_one_line_error_before_anything_starts()
    {
        var start = new ProcessStartInfo(AppProcess.BesideTests("norman")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "capture", "-c", "1", "-w", "/nonexistent/x.pcap" })
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["NORMAN_SOCKET"] = Daemon.SocketPath;
        using var capture = Process.Start(start)!;
        string errors = await capture.StandardError.ReadToEndAsync();
        await capture.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(1, capture.ExitCode);
        Assert.StartsWith("norman capture: ", errors);
        Assert.Contains("/nonexistent/x.pcap", errors);
        Assert.Single(errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain("Exception", errors);
        Assert.Equal(0, TapCount());
    }

    /// <summary>
    /// A 1,500-term expression from nobody once cost the daemon about a minute of CPU and 400 MB: it is refused before
    /// libpcap sees it, and the daemon answers everyone meanwhile.
    /// </summary>
    [RootFact]
    public async Task An_ordinary_users_huge_capture_expression_is_refused_before_it_is_compiled()
    {
        string expression = string.Join(" or ", Enumerable.Range(1, 1500).Select(i => $"port {i}"));
        using var nobody = AppProcess.Start("norman", Daemon.SocketPath, "65534", "capture", "-c", "1", expression);
        Assert.True(nobody.Process.WaitForExit(TimeSpan.FromSeconds(30)), "the refusal did not come at once");
        string errors = await nobody.Process.StandardError.ReadToEndAsync();
        Assert.Equal(1, nobody.Process.ExitCode);
        Assert.Contains("over the 1024-byte limit for an ordinary user", errors);
        Assert.Equal(0, TapCount());
        Assert.Contains("Netid", await Norman("ss"));
    }

    [Theory]
    [InlineData("-c", "-5", "-c takes a count")]
    [InlineData("--timeout", "-1", "--timeout takes seconds")]
    public async Task Nonsense_counts_are_refused_as_usage_errors(string option, string value, string message)
    {
        var (code, output) = await Try("capture", option, value);
        Assert.Equal(2, code);
        Assert.Contains($"norman capture: {message}", output);
    }

    [Fact]
    public void Twenty_expressions_keep_what_tcpdump_keeps_from_an_unfiltered_capture_of_the_same_traffic()
    {
        string[] expressions =
        [
            "udp", "tcp", "icmp", "not tcp", "host 198.18.0.2", "src host 198.18.0.2", "dst host 198.18.0.1", "net 198.18.0.0/24",
            "port 5000", "src port 40001", "dst port 5001", "portrange 5000-5003", "udp and not port 5000", "icmp[icmptype] == icmp-echo",
            "tcp[tcpflags] & tcp-syn != 0", "len > 200", "less 100", "greater 1000", "ip[8] == 64", "icmp or (ether src " + Daemon.Peer.Mac + " and tcp)",
            "(udp or tcp) and dst portrange 5001-5002", "udp[8:2] = 0x4142", "ip proto 17 and ip[2:2] > 100",
        ];
        using var control = ControlChannel.Connect(Daemon.SocketPath);
        var all = Open(control, "");
        var filtered = expressions.Select(e => Open(control, e)).ToList();

        var random = new Random(6);
        for (int i = 0; i < 400; i++)
        {
            int size = random.Next(4) == 0 ? random.Next(900, 1400) : random.Next(0, 120);
            var payload = new byte[size];
            random.NextBytes(payload);
            if (size >= 2 && i % 5 == 0)
            {
                payload[0] = 0x41;
                payload[1] = 0x42;
            }
            switch (i % 4)
            {
                case 0 or 1: Daemon.Peer.SendUdp((ushort)(40000 + i % 3), (ushort)(5000 + i % 4), payload); break;
                case 2: Daemon.Peer.SendPing((ushort)i, 1, payload.AsSpan(0, Math.Min(size, 64))); break;
                default: Daemon.Peer.SendFrame(TcpSegment((byte)(i % 3 == 0 ? TcpHeader.Syn : TcpHeader.Ack), (ushort)(5000 + i % 4))); break;
            }
        }
        Assert.True(ApplicationProcessTests.WaitFor(() => Daemon.Daemon.Engine.Counters.PortRxPackets >= 400));
        // The port counts a batch as it takes it in, before the taps see its packets: drain until all 400 are there
        // (the filtered taps are read after tcpdump has run twenty times, long after).
        var everything = new List<CaptureRecord.Packet>();
        ApplicationProcessTests.WaitFor(() =>
        {
            everything.AddRange(all.Drain());
            return everything.Count >= 400;
        });
        Assert.InRange(everything.Count, 400, 2000);
        string file = Path.Combine(Daemon.Directory, "all.pcap");
        using (var stream = File.Create(file))
        {
            var writer = new PcapWriter(stream, CaptureRecord.MaxSnapLength);
            foreach (var packet in everything)
            {
                writer.Write(packet);
            }
            writer.Finish();
        }
        int strictSubsets = 0;
        for (int e = 0; e < expressions.Length; e++)
        {
            var kept = filtered[e].Drain().Select(p => Convert.ToHexString(p.Frame)).Order().ToList();
            string selected = Path.Combine(Daemon.Directory, $"selected-{e}.pcap");
            Host.Run("tcpdump", "-r", file, "-w", selected, expressions[e]);
            var reference = ReadPcap(selected).Select(Convert.ToHexString).Order().ToList();
            Assert.True(reference.Count > 0, $"'{expressions[e]}' selects nothing from the traffic: the test would prove little");
            Assert.True(reference.SequenceEqual(kept), $"'{expressions[e]}': tcpdump keeps {reference.Count} packets, norman capture {kept.Count}, or other ones");
            strictSubsets += reference.Count < everything.Count ? 1 : 0;
        }
        Assert.True(strictSubsets >= 18, $"only {strictSubsets} expressions tell packets apart");
    }

    /// <summary>The frames of a classic pcap file, as tcpdump -w writes them.</summary>
    private static List<byte[]> ReadPcap(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var frames = new List<byte[]>();
        for (int at = 24; at + 16 <= bytes.Length;)
        {
            int captured = BitConverter.ToInt32(bytes, at + 8);
            frames.Add(bytes[(at + 16)..(at + 16 + captured)]);
            at += 16 + captured;
        }
        return frames;
    }

    private byte[] UdpFrame(MacAddress destination, ushort port, bool good = true)
    {
        var frame = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + 4];
        EthernetHeader.Write(frame, destination, Daemon.Peer.Mac, EtherTypes.IPv4);
        "ping"u8.CopyTo(frame.AsSpan(EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4));
        UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), DaemonFixture.PeerAddress, 40000, DaemonFixture.HostAddress, port, 4);
        if (!good)
        {
            frame[EthernetHeader.Size + Ipv4Header.Size + 6] ^= 0x55; // the UDP checksum's first byte
        }
        return frame;
    }

    /// <summary>The frame with one 802.1Q tag between its MAC addresses and its EtherType.</summary>
    private static byte[] VlanTagged(byte[] frame, ushort vlan) =>
        [.. frame[..12], 0x81, 0x00, (byte)(vlan >> 8), (byte)vlan, .. frame[12..]];

    private byte[] TcpSegment(byte flags, ushort port)
    {
        // With a right checksum: the dataplane drops a segment with a wrong one before any tap after the demux sees it.
        var frame = new byte[EthernetHeader.Size + TcpSegmentBuilder.HeaderLength];
        EthernetHeader.Write(frame, Daemon.Daemon.Engine.Host.Mac, Daemon.Peer.Mac, EtherTypes.IPv4);
        TcpSegmentBuilder.Write(frame.AsSpan(EthernetHeader.Size), DaemonFixture.PeerAddress, 0x9C00, DaemonFixture.HostAddress, port,
            new TcpSegmentFields(0, 0, flags, 0), [], 0, identification: 1);
        return frame;
    }

    private sealed unsafe class Tap(SharedMemory region, RingConsumer ring) : IDisposable
    {
        public List<CaptureRecord.Packet> Drain()
        {
            var packets = new List<CaptureRecord.Packet>();
            int available;
            while ((available = ring.Available()) > 0)
            {
                for (int i = 0; i < available; i++)
                {
                    packets.Add(CaptureRecord.Read(ring.Peek()));
                    ring.Advance();
                }
                ring.Publish();
            }
            return packets;
        }

        public void Dispose() => region.Dispose();
    }

    private static unsafe Tap Open(ControlChannel control, string expression)
    {
        var fds = new List<int>();
        var capture = control.Call(new ControlRequest { Op = ControlProtocol.Ops.CaptureStart, Chain = "ingress", Expression = expression }, fds).Capture!;
        var region = SharedMemory.Map(fds[0], capture.RegionBytes);
        new Microsoft.Win32.SafeHandles.SafeFileHandle(fds[1], ownsHandle: true).Dispose();
        return new Tap(region, new RingConsumer(region.Address, capture.SlotCount, capture.SlotSize));
    }

    private Process StartCapture(params string[] arguments)
    {
        // Through `env --default-signal=INT`: a suite started in the background by a shell without job control runs with
        // SIGINT ignored, which every child inherits, and then no Ctrl-C could reach the capture; a terminal's would.
        var start = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "--default-signal=INT", AppProcess.BesideTests("norman"), "capture", "--timeout", "30" }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["NORMAN_SOCKET"] = Daemon.SocketPath;
        var process = Process.Start(start)!;
        // The capture is in place once the daemon has the tap: wait for it, not for time.
        Assert.True(ApplicationProcessTests.WaitFor(() => TapCount() > _taps), "the capture never started");
        _taps = TapCount();
        return process;
    }

    private int _taps;

    private int TapCount() => (int)Daemon.Daemon.Engine.TapCount;

    private static async Task<string> FinishAsync(Process capture)
    {
        string errors = await capture.StandardError.ReadToEndAsync();
        await capture.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.True(capture.ExitCode == 0, errors);
        return errors;
    }
}
