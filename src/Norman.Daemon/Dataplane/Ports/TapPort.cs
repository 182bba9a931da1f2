using Norman.Core.Shm;
using System.Runtime.InteropServices;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// A Linux TAP device: the kernel on the other side is the peer, so ping, nc, socat and tshark work against
/// Norman's applications. Creates the device (or attaches to an existing persistent one), optionally moves it
/// into a network namespace so the host's own stays clean, and brings it up. Frames are read and written one
/// system call each (TAP has no batch interface); the device disappears when Norman closes it, if Norman made it.
/// </summary>
public sealed unsafe class TapPort : IPort
{
    private const uint TunSetIff = 0x400454CA;
    private const short IffTap = 0x0002;
    private const short IffNoPi = 0x1000;
    private const int ORdwr = 0x2, ONonblock = 0x800, OCloexec = 0x80000;

    private readonly int _fd;
    private readonly LineRate _lineRate;
    private bool _disposed;

    public TapPort(string device, string? networkNamespace, long lineRateBitsPerSecond)
    {
        if (device.Length is 0 or > 15)
        {
            throw new ArgumentException($"'{device}' is not an interface name: 1 to 15 characters.");
        }
        Device = device;
        Namespace = networkNamespace;
        Created = !Directory.Exists($"/sys/class/net/{device}");
        _fd = Libc.Open("/dev/net/tun", ORdwr | ONonblock | OCloexec);
        if (_fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new InvalidOperationException(
                $"Cannot open /dev/net/tun: {Marshal.GetPInvokeErrorMessage(errno)}. A TAP port needs root or CAP_NET_ADMIN, and the tun module.");
        }
        var request = stackalloc byte[40];
        new Span<byte>(request, 40).Clear();
        System.Text.Encoding.ASCII.GetBytes(device, new Span<byte>(request, 16));
        *(short*)(request + 16) = IffTap | IffNoPi;
        if (Libc.Ioctl(_fd, TunSetIff, request) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Libc.Close(_fd);
            throw new InvalidOperationException($"Cannot create or attach TAP device {device}: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }
        try
        {
            if (networkNamespace is not null)
            {
                IpCommand.Run("link", "set", "dev", device, "netns", networkNamespace);
                IpCommand.Run("-n", networkNamespace, "link", "set", "dev", device, "up");
            }
            else
            {
                IpCommand.Run("link", "set", "dev", device, "up");
            }
        }
        catch
        {
            Libc.Close(_fd);
            throw;
        }
        _lineRate = new LineRate(lineRateBitsPerSecond);
        Name = networkNamespace is null ? $"tap:{device}" : $"tap:{device} (netns {networkNamespace})";
    }

    public string Name { get; }
    public string Device { get; }
    public string? Namespace { get; }
    /// <summary>True when Norman created the device (it goes away when Norman closes it).</summary>
    public bool Created { get; }

    public int Receive(PacketBatch batch, long now)
    {
        int received = 0;
        while (!batch.IsFull)
        {
            var buffer = batch.NextBuffer();
            nint length;
            fixed (byte* pointer = buffer)
            {
                length = Libc.Read(_fd, pointer, (nuint)buffer.Length);
            }
            if (length <= 0)
            {
                break; // EAGAIN: nothing more now. Other errors end the breath's reading too; the next breath retries.
            }
            // A frame longer than the buffer comes in cut to it (the parse stage counts it as too long); never trust
            // the returned length past the buffer.
            batch.Append((int)Math.Min(length, buffer.Length));
            received++;
        }
        return received;
    }

    public long TransmitBudget(long now) => _lineRate.Budget(now);

    public int Transmit(PacketBatch batch, long now)
    {
        int dropped = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            if (batch.IsDone(i))
            {
                continue;
            }
            var frame = batch.Frame(i);
            _lineRate.Charge(frame.Length);
            nint written;
            fixed (byte* pointer = frame)
            {
                written = Libc.Write(_fd, pointer, (nuint)frame.Length);
            }
            if (written != frame.Length)
            {
                dropped++; // The kernel's TAP queue is full (EAGAIN) or the link is down.
            }
        }
        return dropped;
    }

    public IReadOnlyList<int> WakeDescriptors => [_fd];

    /// <summary>The TAP descriptor is readable while a frame waits: nothing to arm.</summary>
    public SleepAllowance PrepareToSleep(long now) => SleepAllowance.UntilWoken;

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Libc.Close(_fd);
    }
}
