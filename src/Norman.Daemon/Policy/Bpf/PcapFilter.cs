using System.Runtime.InteropServices;

namespace Norman.Daemon.Policy.Bpf;

/// <summary>A libpcap filter expression that libpcap refused; the message is libpcap's own.</summary>
public sealed class PcapFilterException(string expression, string message)
    : Exception($"bad filter expression '{expression}': {message}")
{
    public string Expression { get; } = expression;
    public string LibpcapMessage { get; } = message;
}

/// <summary>
/// Compiles libpcap filter expressions (tcpdump's language) for Ethernet frames with libpcap itself
/// (pcap_compile on a "dead" handle, optimised), into a <see cref="BpfProgram"/>.
/// </summary>
/// <remarks>
/// libpcap's optimiser grows faster than the cube of an expression's terms and cannot be interrupted ("port 1 or
/// port 2 or …": 100 terms 0.2 s, 200 terms 1.3 s, 400 terms 12 s and climbing, measured on the development
/// machine), so the only bound that holds is on what goes in: <see cref="MaxExpressionBytes"/> (about 1.5 s and
/// 25 MB at worst of the shapes tried), and on what comes out, <see cref="MaxInstructions"/>, as the kernel's
/// BPF_MAXINSNS. Each success is remembered, so that a policy recompiled on every change costs libpcap nothing
/// for the rules it already had.
/// </remarks>
public static unsafe class PcapFilter
{
    /// <summary>The longest expression compiled for anyone (administrators included).</summary>
    public const int MaxExpressionBytes = 2048;
    /// <summary>The longest program kept, as the kernel's BPF_MAXINSNS.</summary>
    public const int MaxInstructions = 4096;
    private const int RememberedPrograms = 256;

    /// <summary>pcap_compile is not reentrant in every libpcap release: one compilation at a time.</summary>
    private static readonly object CompileLock = new();
    private static readonly Dictionary<string, BpfProgram> Remembered = new(StringComparer.Ordinal);

    public static BpfProgram Compile(string expression, int snapLength = 262144)
    {
        int bytes = System.Text.Encoding.UTF8.GetByteCount(expression);
        if (bytes > MaxExpressionBytes)
        {
            throw new PcapFilterException(expression.Length > 60 ? expression[..60] + "…" : expression,
                $"{bytes} bytes is over the {MaxExpressionBytes}-byte limit for a filter expression (libpcap's compile time grows with " +
                "the cube of its terms); use a shorter one, or a set (`norman filter set`) for many addresses or ports");
        }
        lock (CompileLock)
        {
            if (snapLength == 262144 && Remembered.TryGetValue(expression, out var known))
            {
                return known;
            }
            nint pcap = Open(snapLength);
            try
            {
                Libpcap.Program program;
                if (Libpcap.Compile(pcap, &program, expression, 1, Libpcap.NetmaskUnknown) != 0)
                {
                    throw new PcapFilterException(expression, Marshal.PtrToStringUTF8(Libpcap.GetError(pcap)) ?? "unknown error");
                }
                try
                {
                    if (program.Length > MaxInstructions)
                    {
                        throw new PcapFilterException(expression.Length > 60 ? expression[..60] + "…" : expression,
                            $"it compiles to {program.Length} BPF instructions, over the {MaxInstructions} a program may have (as the kernel's BPF_MAXINSNS)");
                    }
                    var compiled = new BpfProgram(new ReadOnlySpan<BpfInstruction>(program.Instructions, (int)program.Length).ToArray(), expression);
                    if (snapLength == 262144)
                    {
                        if (Remembered.Count >= RememberedPrograms)
                        {
                            Remembered.Clear(); // rare (256 distinct expressions): start again rather than keep an order
                        }
                        Remembered[expression] = compiled;
                    }
                    return compiled;
                }
                finally
                {
                    Libpcap.FreeCode(&program);
                }
            }
            finally
            {
                Libpcap.Close(pcap);
            }
        }
    }

    /// <summary>libpcap's own matcher for an expression (pcap_offline_filter): the reference tests hold Norman's to.</summary>
    public static LibpcapReference Reference(string expression)
    {
        lock (CompileLock)
        {
            return new LibpcapReference(expression, Open(262144));
        }
    }

    internal static object Lock => CompileLock;

    internal static nint Open(int snapLength)
    {
        try
        {
            nint pcap = Libpcap.OpenDead(Libpcap.LinkTypeEthernet, snapLength);
            return pcap != 0 ? pcap : throw new InvalidOperationException("pcap_open_dead failed.");
        }
        catch (DllNotFoundException error)
        {
            throw new InvalidOperationException($"libpcap is needed for filter expressions and was not found ({Libpcap.Library}): apt-get install libpcap0.8.", error);
        }
    }
}

/// <summary>An expression compiled by libpcap and run by libpcap's own interpreter (pcap_offline_filter).</summary>
public sealed unsafe class LibpcapReference : IDisposable
{
    private readonly nint _pcap;
    private Libpcap.Program _program;
    private bool _disposed;

    internal LibpcapReference(string expression, nint pcap)
    {
        _pcap = pcap;
        fixed (Libpcap.Program* program = &_program)
        {
            if (Libpcap.Compile(pcap, program, expression, 1, Libpcap.NetmaskUnknown) != 0)
            {
                string message = Marshal.PtrToStringUTF8(Libpcap.GetError(pcap)) ?? "unknown error";
                Libpcap.Close(pcap);
                throw new PcapFilterException(expression, message);
            }
        }
    }

    public bool Matches(ReadOnlySpan<byte> frame, int wireLength)
    {
        var header = new Libpcap.PacketHeader { CapturedLength = (uint)frame.Length, Length = (uint)wireLength };
        fixed (byte* bytes = frame)
        fixed (Libpcap.Program* program = &_program)
        {
            return Libpcap.OfflineFilter(program, &header, bytes) != 0;
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        lock (PcapFilter.Lock)
        {
            fixed (Libpcap.Program* program = &_program)
            {
                Libpcap.FreeCode(program);
            }
            Libpcap.Close(_pcap);
        }
    }
}
