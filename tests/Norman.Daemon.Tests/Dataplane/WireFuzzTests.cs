using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Tests.Policy;
using Xunit.Abstractions;

namespace Norman.Daemon.Tests.Dataplane;

/// <summary>
/// Item 2 of the hardening issue, on the virtual wire: frames from the corpus (every protocol Norman parses),
/// mutated at random — cut at any length, bytes flipped, header fields overwritten, VLAN tags stacked, grown into
/// jumbo frames, or pure noise — go into the engine. Nothing may throw, and every frame the port received must be
/// accounted for: delivered to a socket, taken by the host (ARP, ping), or dropped with a reason.
/// </summary>
public sealed class WireFuzzTests(ITestOutputHelper output) : IDisposable
{
    private const int Frames = 1_000_000;
    private static readonly DropReason[] SendingSide =
    [
        DropReason.TxCorruptIndex, DropReason.TxCorruptLength, DropReason.TxMalformed, DropReason.TxSpoofedSource,
        DropReason.TxTooBig, DropReason.NeighbourUnreachable, DropReason.HostTxFull, DropReason.PortTxFull, DropReason.FilteredEgress,
    ];

    private readonly EngineHarness _wire = new(slotCount: 1024);

    public void Dispose() => _wire.Dispose();

    [Fact]
    public void A_million_mutated_frames_break_nothing_and_each_is_delivered_taken_by_the_host_or_counted_by_reason()
    {
        var apps = new[] { _wire.Bind(5000), _wire.Bind(53), _wire.Bind(40000) };
        // The corpus's frames, and well-formed datagrams to the bound ports (the corpus's checksums are random).
        var corpus = FrameCorpus.Build().Select(f => f.Bytes).Concat(Enumerable.Range(0, 1000).Select(i => Datagram(i))).ToList();
        _wire.Peer.SendFrame(corpus[^1]);
        _wire.Breathe();
        Assert.Single(apps[0].ReceiveAll()); // the well-formed seeds are delivered as they are
        var random = new Random(88);
        var kinds = new int[Mutations.Length];
        for (int sent = 0; sent < Frames;)
        {
            for (int i = 0; i < 4096; i++, sent++)
            {
                int kind = random.Next(Mutations.Length);
                kinds[kind]++;
                var seed = (byte[])corpus[random.Next(corpus.Count)].Clone();
                if (random.Next(8) != 0 && seed.Length >= MacAddress.Size)
                {
                    // Mostly to our MAC, as a peer would send, so the frames get past the first check to the parser.
                    _wire.Engine.Host.Mac.Write(seed);
                }
                _wire.Peer.SendFrame(Mutations[kind](seed, random));
            }
            _wire.Breathe(max: 1000);
            foreach (var app in apps)
            {
                app.ReceiveAll();
            }
        }

        var counters = _wire.Engine.Counters;
        output.WriteLine($"{Frames:N0} frames: " + string.Join(", ", MutationNames.Select((name, i) => $"{name} {kinds[i]:N0}")));
        output.WriteLine($"delivered {counters.DeliveredPackets:N0}, taken by the host {counters.HostFrames:N0}, dropped {Enum.GetValues<DropReason>().Where(r => r != DropReason.None && !SendingSide.Contains(r)).Sum(counters.Drops):N0}: " +
            string.Join(", ", Enum.GetValues<DropReason>().Where(r => counters.Drops(r) > 0).Select(r => $"{DropReasons.Name(r)} {counters.Drops(r):N0}")));
        // The peer's own answers (to the host's ARP requests) come on top of the fuzzed frames.
        Assert.InRange(counters.PortRxPackets, Frames, Frames + Frames / 100);
        long receivedDrops = Enum.GetValues<DropReason>().Where(r => r != DropReason.None && !SendingSide.Contains(r)).Sum(counters.Drops);
        Assert.Equal(counters.PortRxPackets, counters.DeliveredPackets + counters.HostFrames + receivedDrops);
        Assert.True(counters.DeliveredPackets > 0 && counters.HostFrames > 0, "the corpus lost its well-formed frames");

        // Still a working host: a clean datagram goes through after all that.
        _wire.Peer.SendUdp(1234, 5000, "still here"u8);
        _wire.Breathe();
        Assert.Equal("still here"u8.ToArray(), Assert.Single(apps[0].ReceiveAll()).Payload);

    }

    private byte[] Datagram(int i)
    {
        var frame = new byte[EthernetHeader.Size + UdpPacketBuilder.HeaderLengthV4 + i % 1400];
        EthernetHeader.Write(frame, _wire.Engine.Host.Mac, _wire.Peer.Mac, EtherTypes.IPv4);
        UdpPacketBuilder.WriteHeaders(frame.AsSpan(EthernetHeader.Size), EngineHarness.PeerAddress, (ushort)(1024 + i),
            EngineHarness.HostAddress, (ushort)((i % 3) switch { 0 => 5000, 1 => 53, _ => 40000 }), i % 1400);
        return frame;
    }

    private static readonly string[] MutationNames =
        ["as is", "cut short", "bytes flipped", "headers overwritten", "lengths rewritten", "vlan tags stacked", "jumbo", "noise", "to our mac"];

    private static readonly Func<byte[], Random, byte[]>[] Mutations =
    [
        (frame, _) => frame,
        (frame, random) => frame[..random.Next(frame.Length)],
        (frame, random) =>
        {
            var copy = (byte[])frame.Clone();
            for (int flips = random.Next(1, 9); flips > 0 && copy.Length > 0; flips--)
            {
                copy[random.Next(copy.Length)] ^= (byte)random.Next(1, 256);
            }
            return copy;
        },
        (frame, random) =>
        {
            var copy = (byte[])frame.Clone();
            int start = Math.Min(copy.Length, 12 + random.Next(48));
            random.NextBytes(copy.AsSpan(start, Math.Min(copy.Length - start, random.Next(1, 12))));
            return copy;
        },
        (frame, random) =>
        {
            // The IPv4 header's length fields and the UDP/TCP header's first words, where parsers go wrong.
            var copy = (byte[])frame.Clone();
            foreach (int offset in new[] { 14, 16, 17, 38, 39, 46, 47 })
            {
                if (offset < copy.Length && random.Next(3) == 0)
                {
                    copy[offset] = (byte)random.Next(256);
                }
            }
            return copy;
        },
        (frame, random) =>
        {
            int tags = random.Next(1, 5);
            var copy = new byte[Math.Max(frame.Length, 14) + 4 * tags];
            frame.AsSpan(0, Math.Min(12, frame.Length)).CopyTo(copy);
            for (int t = 0; t < tags; t++)
            {
                copy[12 + 4 * t] = random.Next(2) == 0 ? (byte)0x81 : (byte)0x88;
                copy[13 + 4 * t] = random.Next(2) == 0 ? (byte)0x00 : (byte)0xA8;
                copy[15 + 4 * t] = (byte)random.Next(256);
            }
            if (frame.Length > 12)
            {
                frame.AsSpan(12).CopyTo(copy.AsSpan(12 + 4 * tags));
            }
            return copy;
        },
        (frame, random) =>
        {
            var copy = new byte[random.Next(1523, 9019)];
            frame.CopyTo(copy, 0);
            random.NextBytes(copy.AsSpan(frame.Length));
            return copy;
        },
        (_, random) =>
        {
            var noise = new byte[random.Next(0, 2000)];
            random.NextBytes(noise);
            return noise;
        },
        (frame, random) =>
        {
            // Noise behind our MAC, so it passes the first check and meets the parser.
            var copy = new byte[Math.Max(frame.Length, 14)];
            random.NextBytes(copy);
            frame.AsSpan(0, Math.Min(6, frame.Length)).CopyTo(copy);
            copy[12] = random.Next(2) == 0 ? (byte)0x08 : (byte)0x86;
            copy[13] = random.Next(2) == 0 ? (byte)0x00 : (byte)0xDD;
            return copy;
        },
    ];
}
