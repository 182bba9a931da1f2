using Norman.Core.Shm;
using System.Net.Sockets;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// Generic receive offload on an interface an AF_PACKET port holds: turned off while the port holds it (a packet socket
/// would see merged frames, not the wire's), and put back as it was when the port lets go. What it was is also written
/// to a file under the runtime directory before it is changed, so that after a crash (no Dispose ran) the next port on
/// that interface knows the setting to put back, rather than taking "off" for the interface's own.
/// </summary>
internal sealed unsafe class ReceiveMerging : IDisposable
{
    private const uint EthtoolGetGro = 0x2b, EthtoolSetGro = 0x2c;
    private const nuint SiocEthtool = 0x8946;
    private readonly string _device;
    private readonly string? _record;
    private bool _disposed;

    private ReceiveMerging(string device, string? record)
    {
        _device = device;
        _record = record;
    }

    /// <summary>Where the settings to put back are kept: root's runtime directory, or this user's temporary one.</summary>
    public static string RecordDirectory(bool root) =>
        root ? "/run/norman/gro" : Path.Combine(Path.GetTempPath(), $"norman-gro-{Environment.UserName}");

    /// <summary>Turns GRO off on <paramref name="device"/>, remembering what to put back. Best effort: a driver without GRO has nothing to turn off.</summary>
    public static ReceiveMerging TurnOff(string device)
    {
        string directory = RecordDirectory(Environment.UserName == "root");
        string record = Path.Combine(directory, RecordName(device));
        // A record left behind is a crashed port's: its setting is the interface's own, not the "off" it left.
        bool wasOn = File.Exists(record) ? File.ReadAllText(record).Trim() == "on" : Get(device) == true;
        if (!wasOn)
        {
            return new ReceiveMerging(device, null);
        }
        try
        {
            Directory.CreateDirectory(directory);
            File.WriteAllText(record, "on\n");
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            record = ""; // no place to keep it: put back on a clean stop only
        }
        Set(device, false);
        return new ReceiveMerging(device, record);
    }

    /// <summary>
    /// The record's file name: the interface and its network namespace (the inode /proc/self/ns/net links to), since
    /// two namespaces may each have an eth1.
    /// </summary>
    public static string RecordName(string device)
    {
        string? space = new FileInfo("/proc/self/ns/net").LinkTarget; // "net:[4026531840]"
        return space is null ? device : $"{device}@{space.Trim('n', 'e', 't', ':', '[', ']')}";
    }

    /// <summary>GRO's setting on the interface; null when the driver does not say.</summary>
    public static bool? Get(string device)
    {
        var value = stackalloc uint[2] { EthtoolGetGro, 0 };
        return Ethtool(device, value) ? value[1] != 0 : null;
    }

    private static void Set(string device, bool on)
    {
        var value = stackalloc uint[2] { EthtoolSetGro, on ? 1u : 0 };
        Ethtool(device, value);
    }

    private static bool Ethtool(string device, uint* value)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var request = stackalloc byte[40]; // struct ifreq: the name, then ifr_data
        new Span<byte>(request, 40).Clear();
        System.Text.Encoding.ASCII.GetBytes(device, new Span<byte>(request, 15));
        *(uint**)(request + 16) = value;
        return Libc.Ioctl((int)socket.Handle, SiocEthtool, request) == 0;
    }

    public void Dispose()
    {
        if (_disposed || _record is null)
        {
            return;
        }
        _disposed = true;
        Set(_device, true);
        if (_record.Length > 0)
        {
            File.Delete(_record);
        }
    }
}
