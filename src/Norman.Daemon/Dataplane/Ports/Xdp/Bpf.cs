using System.Runtime.InteropServices;
using System.Text;
using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane.Ports.Xdp;

/// <summary>
/// The bpf(2) commands Norman uses — create a map, update and delete its elements, load a program, attach it by a link —
/// each filling the kernel's <c>union bpf_attr</c> at the offsets linux/bpf.h gives, and turning a failure into an
/// error that says what to do.
/// </summary>
public static unsafe class Bpf
{
    private const int MapCreate = 0, MapLookupElement = 1, MapUpdateElement = 2, MapDeleteElement = 3, ProgLoad = 5, LinkCreate = 28;
    private const int AttributesSize = 128;
    public const int MapTypeArray = 2, MapTypeXsk = 17;
    public const int ProgramTypeXdp = 6;
    /// <summary>BPF_XDP, the attach type of an XDP link.</summary>
    public const int AttachTypeXdp = 37;
    public const int XdpFlagsGenericMode = 1 << 1, XdpFlagsDriverMode = 1 << 2;
    private const int LogBytes = 1 << 16;

    public static int CreateMap(int type, int keySize, int valueSize, int maxEntries, string name)
    {
        var attributes = stackalloc byte[AttributesSize];
        new Span<byte>(attributes, AttributesSize).Clear();
        *(int*)attributes = type;
        *(int*)(attributes + 4) = keySize;
        *(int*)(attributes + 8) = valueSize;
        *(int*)(attributes + 12) = maxEntries;
        WriteName(attributes + 28, name); // map_name, after map_flags, inner_map_fd and numa_node
        int fd = Libc.Bpf(MapCreate, attributes, AttributesSize);
        return fd >= 0 ? fd : throw Failure($"creating the BPF map '{name}'");
    }

    /// <summary>Sets a map element (BPF_ANY); returns the errno on failure, 0 on success.</summary>
    public static int UpdateElement(int mapFd, void* key, void* value)
    {
        var attributes = stackalloc byte[AttributesSize];
        new Span<byte>(attributes, AttributesSize).Clear();
        *(int*)attributes = mapFd;
        *(ulong*)(attributes + 8) = (ulong)key;
        *(ulong*)(attributes + 16) = (ulong)value;
        return Libc.Bpf(MapUpdateElement, attributes, AttributesSize) == 0 ? 0 : Libc.LastError;
    }

    /// <summary>Reads a map element into <paramref name="value"/>; false when there is none.</summary>
    public static bool LookupElement(int mapFd, void* key, void* value)
    {
        var attributes = stackalloc byte[AttributesSize];
        new Span<byte>(attributes, AttributesSize).Clear();
        *(int*)attributes = mapFd;
        *(ulong*)(attributes + 8) = (ulong)key;
        *(ulong*)(attributes + 16) = (ulong)value;
        return Libc.Bpf(MapLookupElement, attributes, AttributesSize) == 0;
    }

    public static void DeleteElement(int mapFd, void* key)
    {
        var attributes = stackalloc byte[AttributesSize];
        new Span<byte>(attributes, AttributesSize).Clear();
        *(int*)attributes = mapFd;
        *(ulong*)(attributes + 8) = (ulong)key;
        Libc.Bpf(MapDeleteElement, attributes, AttributesSize);
    }

    /// <summary>Loads an XDP program; a program the verifier refuses throws with the verifier's own words.</summary>
    public static int LoadXdpProgram(ulong[] instructions, string name)
    {
        int fd = Load(instructions, name, null, out int errno);
        if (fd >= 0)
        {
            return fd;
        }
        // Again with the verifier's log (not the first time: a log too small for a good program fails it too).
        byte* log = (byte*)NativeMemory.AllocZeroed(LogBytes);
        try
        {
            Load(instructions, name, log, out _);
            string verifier = Marshal.PtrToStringUTF8((nint)log) ?? "";
            throw new InvalidOperationException(
                $"The kernel refused Norman's XDP program ({Libc.ErrorText(errno)})" +
                (errno == 1 ? ": loading BPF programs needs root, or CAP_BPF with CAP_NET_ADMIN." : ".") +
                (verifier.Length > 0 ? $" The verifier said:\n{verifier.TrimEnd()}" : ""));
        }
        finally
        {
            NativeMemory.Free(log);
        }
    }

    private static int Load(ulong[] instructions, string name, byte* log, out int errno)
    {
        var attributes = stackalloc byte[AttributesSize];
        new Span<byte>(attributes, AttributesSize).Clear();
        fixed (ulong* code = instructions)
        fixed (byte* license = "GPL\0"u8)
        {
            *(int*)attributes = ProgramTypeXdp;
            *(int*)(attributes + 4) = instructions.Length;
            *(ulong*)(attributes + 8) = (ulong)code;
            *(ulong*)(attributes + 16) = (ulong)license;
            if (log != null)
            {
                *(int*)(attributes + 24) = 1; // log_level
                *(int*)(attributes + 28) = LogBytes;
                *(ulong*)(attributes + 32) = (ulong)log;
            }
            WriteName(attributes + 48, name);
            *(int*)(attributes + 68) = AttachTypeXdp; // expected_attach_type, as libbpf sets it for SEC("xdp")
            int fd = Libc.Bpf(ProgLoad, attributes, AttributesSize);
            errno = fd >= 0 ? 0 : Libc.LastError;
            return fd;
        }
    }

    /// <summary>
    /// Attaches an XDP program to an interface by a BPF link (BPF_LINK_CREATE): the program stays attached while the
    /// link's descriptor is open, so a daemon that dies, even by SIGKILL, leaves nothing on the interface. Returns the
    /// link's descriptor, or -errno (EBUSY: another program holds the interface; it is never replaced).
    /// </summary>
    public static int AttachXdp(int programFd, int ifindex, int flags)
    {
        var attributes = stackalloc byte[AttributesSize];
        new Span<byte>(attributes, AttributesSize).Clear();
        *(int*)attributes = programFd;
        *(int*)(attributes + 4) = ifindex;
        *(int*)(attributes + 8) = AttachTypeXdp;
        *(int*)(attributes + 12) = flags;
        int fd = Libc.Bpf(LinkCreate, attributes, AttributesSize);
        return fd >= 0 ? fd : -Libc.LastError;
    }

    private static void WriteName(byte* destination, string name)
    {
        // BPF object names: at most 15 characters of [A-Za-z0-9_.], NUL-terminated.
        var bytes = Encoding.ASCII.GetBytes(name);
        new ReadOnlySpan<byte>(bytes, 0, Math.Min(bytes.Length, 15)).CopyTo(new Span<byte>(destination, 16));
    }

    private static InvalidOperationException Failure(string what)
    {
        int errno = Libc.LastError;
        return new InvalidOperationException($"{what} failed: {Libc.ErrorText(errno)}." +
            (errno == 1 ? " An XDP port needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW." : ""));
    }
}
