using Norman.Core.Packets;
using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane.Ports.Xdp;

/// <summary>
/// The steering program on an interface, with its maps: loaded, then attached by a BPF link — in the driver (native)
/// mode where the driver has it, else the generic mode — and detached when the link's descriptor closes, by
/// <see cref="Dispose"/> or by the process's death. An interface that already has an XDP program is refused: Norman
/// never replaces another's program.
/// </summary>
public sealed unsafe class XdpSteering : IDisposable
{
    private const int MaxPorts = 65536;
    private readonly int _socketsMap = -1;
    private readonly int _portsMap = -1;
    private readonly int _program = -1;
    private readonly int _link = -1;
    private readonly object _gate = new();
    private bool _disposed;

    public XdpSteering(string device, int ifindex, int queues, NetAddress address, IReadOnlyList<NetAddress> addresses6, bool sharedAddress)
    {
        SharedAddress = sharedAddress;
        try
        {
            _socketsMap = Bpf.CreateMap(Bpf.MapTypeXsk, sizeof(uint), sizeof(uint), queues, "norman_xsks");
            ulong[] program;
            if (sharedAddress)
            {
                _portsMap = Bpf.CreateMap(Bpf.MapTypeArray, sizeof(uint), sizeof(uint), MaxPorts, "norman_ports");
                program = SteeringProgram.SharedAddress(_socketsMap, _portsMap, address);
            }
            else
            {
                program = SteeringProgram.OwnAddress(_socketsMap, address, addresses6);
            }
            _program = Bpf.LoadXdpProgram(program, "norman_steer");
            _link = Attach(ifindex, Bpf.XdpFlagsDriverMode);
            Native = _link >= 0;
            if (_link < 0 && _link != -Busy)
            {
                // The driver has no XDP of its own (EOPNOTSUPP and the like): the generic mode works on any interface.
                _link = Attach(ifindex, Bpf.XdpFlagsGenericMode);
            }
            if (_link == -Busy)
            {
                throw new InvalidOperationException($"{device} already has an XDP program (see `ip link show {device}`), and Norman does not " +
                    $"replace another's. Detach it if nothing needs it (`ip link set {device} xdp off`), or give Norman another interface.");
            }
            if (_link < 0)
            {
                throw new InvalidOperationException($"Attaching Norman's XDP program to {device} failed: {Libc.ErrorText(-_link)}." +
                    (_link == -1 ? " An XDP port needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW." : ""));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private const int Busy = 16; // EBUSY: the interface has an XDP program
    private static readonly TimeSpan ReleaseTime = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Attaches, waiting out EBUSY for a moment: a Norman that has just stopped leaves its program until the kernel's
    /// deferred release of its link has run (milliseconds); a program that stays is another's, and is refused.
    /// </summary>
    private int Attach(int ifindex, int flags)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            int link = Bpf.AttachXdp(_program, ifindex, flags);
            if (link != -Busy || clock.Elapsed > ReleaseTime)
            {
                return link;
            }
            Thread.Sleep(20); // a start-up wait for the kernel, bounded by ReleaseTime
        }
    }

    /// <summary>Attached in the driver (native) mode; else in the generic mode.</summary>
    public bool Native { get; }
    public bool SharedAddress { get; }

    /// <summary>Frames for Norman arriving on <paramref name="queue"/> go to <paramref name="socketFd"/>.</summary>
    public void AddSocket(int queue, int socketFd)
    {
        uint key = (uint)queue;
        uint value = (uint)socketFd;
        int errno = Bpf.UpdateElement(_socketsMap, &key, &value);
        if (errno != 0)
        {
            throw new InvalidOperationException($"Steering queue {queue} to Norman's AF_XDP socket failed: {Libc.ErrorText(errno)}.");
        }
    }

    /// <summary>In the shared-address mode, steers a port's UDP or TCP to Norman (<paramref name="open"/>) or back to the kernel.</summary>
    public void SetPort(byte protocol, ushort port, bool open)
    {
        if (!SharedAddress)
        {
            return;
        }
        uint bit = protocol == IpProtocols.Tcp ? SteeringProgram.PortTcp : SteeringProgram.PortUdp;
        lock (_gate)
        {
            // The map is the one record of which protocols a port steers: read, change one bit, write back.
            uint key = port;
            uint value = 0;
            Bpf.LookupElement(_portsMap, &key, &value);
            value = open ? value | bit : value & ~bit;
            int errno = Bpf.UpdateElement(_portsMap, &key, &value);
            if (errno != 0)
            {
                throw new InvalidOperationException($"Steering port {port} failed: {Libc.ErrorText(errno)}.");
            }
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (int fd in new[] { _link, _program, _portsMap, _socketsMap })
        {
            if (fd >= 0)
            {
                Libc.Close(fd);
            }
        }
    }
}
