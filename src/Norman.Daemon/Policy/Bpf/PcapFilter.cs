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
public static unsafe class PcapFilter
{
    /// <summary>pcap_compile is not reentrant in every libpcap release: one compilation at a time.</summary>
    private static readonly object CompileLock = new();

    public static BpfProgram Compile(string expression, int snapLength = 262144)
    {
        lock (CompileLock)
        {
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
                    return new BpfProgram(new ReadOnlySpan<BpfInstruction>(program.Instructions, (int)program.Length).ToArray(), expression);
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
