using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Tests.Policy;

public sealed class BpfTests
{
    private static readonly Lazy<IReadOnlyList<FrameCorpus.Frame>> Corpus = new(() => FrameCorpus.Build());

    public static TheoryData<string> Expressions =>
    [
        "udp", "tcp", "icmp", "arp", "ip6", "ip", "vlan", "vlan 42",
        "host 198.18.0.1", "src host 198.18.0.2", "dst host 10.1.2.3",
        "net 198.18.0.0/16", "dst net 198.18.7.0/24", "src net 10.0.0.0/8 or src host 192.0.2.77",
        "port 53", "src port 5000", "dst port 80", "portrange 1000-2000", "udp dst portrange 5000-6000",
        "tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[13] & 0x07 != 0",
        "icmp[icmptype] == icmp-echo", "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
        "len > 100", "less 64", "greater 1000", "ip[8] < 64", "ip proto 17", "ip6 and udp", "ip6 and tcp port 443",
        "ether broadcast", "ether src 02:00:00:00:00:01", "ether[12:2] = 0x0800", "udp and not port 53",
        "(tcp or udp) and dst portrange 5000-6000", "ip[6:2] & 0x1fff != 0", "ip host 198.18.0.1 and (tcp port 80 or udp port 53)",
        "not ip and not arp", "udp[8:2] > 0x8000",
    ];

    [Theory]
    [MemberData(nameof(Expressions))]
    public unsafe void Compiled_IL_the_interpreter_and_libpcap_agree_on_every_frame(string expression)
    {
        var program = PcapFilter.Compile(expression);
        var compiled = BpfCompiler.Compile(program);
        using var libpcap = PcapFilter.Reference(expression);
        int matched = 0;
        foreach (var frame in Corpus.Value)
        {
            bool reference = libpcap.Matches(frame.Bytes, frame.WireLength);
            uint interpreted = BpfInterpreter.Run(program, frame.Bytes, frame.WireLength);
            uint native;
            fixed (byte* bytes = frame.Bytes)
            {
                native = compiled(bytes, frame.Bytes.Length, frame.WireLength);
            }
            Assert.True(reference == (interpreted != 0), $"interpreter disagrees with libpcap on a {frame.Bytes.Length}-byte frame: {Convert.ToHexString(frame.Bytes)}");
            Assert.Equal(interpreted, native);
            matched += reference ? 1 : 0;
        }
        // The corpus must put the filter to work: something matches, and something does not.
        Assert.InRange(matched, 1, Corpus.Value.Count - 1);
    }

    [Theory]
    [MemberData(nameof(Expressions))]
    public void What_a_program_decides_from_the_protocol_alone_is_what_libpcap_decides(string expression)
    {
        var verdicts = new ProtocolVerdicts(PcapFilter.Compile(expression));
        using var libpcap = PcapFilter.Reference(expression);
        foreach (var frame in Corpus.Value)
        {
            var verdict = verdicts.Of(frame.Bytes);
            if (verdict != ProtocolVerdicts.Verdict.Depends)
            {
                Assert.True(libpcap.Matches(frame.Bytes, frame.WireLength) == (verdict == ProtocolVerdicts.Verdict.Accept),
                    $"'{expression}' said {verdict} for {Convert.ToHexString(frame.Bytes)}");
            }
        }
    }

    [Theory]
    [InlineData("tcp port 9", 17, ProtocolVerdicts.Verdict.Reject)] // a UDP frame is no TCP: rejected unread
    [InlineData("tcp port 9", 6, ProtocolVerdicts.Verdict.Depends)] // a TCP frame: the ports decide
    [InlineData("udp", 17, ProtocolVerdicts.Verdict.Accept)]
    [InlineData("len > 100", 17, ProtocolVerdicts.Verdict.Depends)] // the length is never known in advance
    [InlineData("ether broadcast", 17, ProtocolVerdicts.Verdict.Depends)] // nor any address
    public void A_protocol_settles_what_it_can_and_no_more(string expression, byte protocol, ProtocolVerdicts.Verdict expected)
    {
        var frame = new byte[64];
        frame[12] = 0x08; // IPv4
        frame[23] = protocol;
        Assert.Equal(expected, new ProtocolVerdicts(PcapFilter.Compile(expression)).Of(frame));
    }

    [Fact]
    public void A_bad_expression_gets_libpcaps_own_message()
    {
        var error = Assert.Throws<PcapFilterException>(() => PcapFilter.Compile("port eleventy"));
        Assert.Contains("port eleventy", error.Message);
        Assert.False(string.IsNullOrWhiteSpace(error.LibpcapMessage));
        Assert.Throws<PcapFilterException>(() => PcapFilter.Compile("tcp and and udp"));
    }

    [Fact]
    public void Programs_that_jump_out_or_never_return_are_refused()
    {
        Assert.Throws<InvalidDataException>(() => new BpfProgram([new BpfInstruction(0x05, 0, 0, 5), new BpfInstruction(0x06, 0, 0, 0)]));
        Assert.Throws<InvalidDataException>(() => new BpfProgram([new BpfInstruction(0x00, 0, 0, 1)]));
        Assert.Throws<InvalidDataException>(() => new BpfProgram([new BpfInstruction(0x02, 0, 0, 16), new BpfInstruction(0x06, 0, 0, 0)]));
    }

    [Fact]
    public unsafe void Division_by_zero_and_loads_past_the_capture_reject()
    {
        // ldx #0; ld #7; div x; ret #1  — rejects
        var divide = new BpfProgram([
            new BpfInstruction(BpfCodes.Ldx | BpfCodes.Imm, 0, 0, 0),
            new BpfInstruction(BpfCodes.Ld | BpfCodes.Imm, 0, 0, 7),
            new BpfInstruction(BpfCodes.Alu | BpfCodes.Div | 0x08, 0, 0, 0),
            new BpfInstruction(BpfCodes.Ret, 0, 0, 1),
        ]);
        // ld [0x7fffffff]; ret #1 — rejects, without wrapping
        var far = new BpfProgram([new BpfInstruction(BpfCodes.Ld | BpfCodes.W | BpfCodes.Abs, 0, 0, 0x7FFF_FFFF), new BpfInstruction(BpfCodes.Ret, 0, 0, 1)]);
        byte[] packet = [1, 2, 3, 4];
        fixed (byte* bytes = packet)
        {
            Assert.Equal(0u, BpfCompiler.Compile(divide)(bytes, 4, 4));
            Assert.Equal(0u, BpfCompiler.Compile(far)(bytes, 4, 4));
        }
        Assert.Equal(0u, BpfInterpreter.Run(divide, packet, 4));
        Assert.Equal(0u, BpfInterpreter.Run(far, packet, 4));
    }
}
