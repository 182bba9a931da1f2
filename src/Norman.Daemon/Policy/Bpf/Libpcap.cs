using System.Runtime.InteropServices;

namespace Norman.Daemon.Policy.Bpf;

/// <summary>
/// libpcap, loaded from Debian's libpcap0.8 (libpcap.so.0.8): the library that defines the filter language.
/// Norman compiles expressions with it and never parses the language itself.
/// </summary>
internal static unsafe partial class Libpcap
{
    public const string Library = "libpcap.so.0.8";
    public const int LinkTypeEthernet = 1;
    public const uint NetmaskUnknown = 0xFFFFFFFF;

    [StructLayout(LayoutKind.Sequential)]
    public struct Program
    {
        public uint Length;
        public BpfInstruction* Instructions;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PacketHeader
    {
        public long Seconds;
        public long Microseconds;
        public uint CapturedLength;
        public uint Length;
    }

    [LibraryImport(Library, EntryPoint = "pcap_open_dead")]
    public static partial nint OpenDead(int linkType, int snapLength);

    [LibraryImport(Library, EntryPoint = "pcap_compile", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Compile(nint pcap, Program* program, string expression, int optimize, uint netmask);

    [LibraryImport(Library, EntryPoint = "pcap_geterr")]
    public static partial nint GetError(nint pcap);

    [LibraryImport(Library, EntryPoint = "pcap_freecode")]
    public static partial void FreeCode(Program* program);

    [LibraryImport(Library, EntryPoint = "pcap_offline_filter")]
    public static partial int OfflineFilter(Program* program, PacketHeader* header, byte* packet);

    [LibraryImport(Library, EntryPoint = "pcap_close")]
    public static partial void Close(nint pcap);
}
