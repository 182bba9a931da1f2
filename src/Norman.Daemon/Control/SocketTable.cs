using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Core.Protocol;

namespace Norman.Daemon.Control;

/// <summary>
/// The control plane's socket table and its bind rules, as Linux has them: one socket per protocol and port
/// (a wildcard bind conflicts with every address), ports below ip_unprivileged_port_start need
/// root or the admin group (capabilities are not known at connect: see <see cref="PeerIdentity"/>), port 0 picks a free port from the ephemeral range, and a uid may hold only so many sockets
/// and so much pipe memory (the daemon backs every RX slot it fills, so a user's sockets are the daemon's memory).
/// </summary>
public sealed class SocketTable(NetAddress hostAddress, int maxSocketsPerUid = 4096, long maxPipeBytesPerUid = SocketTable.DefaultMaxPipeBytesPerUid)
{
    public const long DefaultMaxPipeBytesPerUid = 1L << 30;

    public const int EphemeralFirst = 32768;
    public const int EphemeralLast = 60999;

    private readonly object _gate = new();
    private readonly Dictionary<long, NormanSocket> _byId = new();
    /// <summary>Each uid's sockets and pipe bytes, for its limits: a bind need not walk every socket.</summary>
    private readonly Dictionary<int, (int Sockets, long Bytes)> _heldByUid = new();
    /// <summary>The sockets on each port: one, or several that Linux would let share it (<see cref="MayShare"/>).</summary>
    private readonly Dictionary<(byte Protocol, ushort Port), List<NormanSocket>> _byPort = new();
    /// <summary>The kernel's port held for Norman while any Norman socket holds it (sharing the address with the kernel).</summary>
    private readonly Dictionary<(byte Protocol, ushort Port), IDisposable> _kernelHolds = new();

    /// <summary>The kernel's stack, when it hands out ports from the same space (a shared address); null otherwise.</summary>
    public IKernelPorts? KernelPorts { get; init; }
    private long _nextId = 1;
    private int _nextEphemeral = EphemeralFirst + Random.Shared.Next(EphemeralLast - EphemeralFirst);

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byId.Count;
            }
        }
    }

    /// <summary>
    /// net.ipv4.ip_unprivileged_port_start, read again at most once a second: reading /proc took tens of µs of each
    /// bind, and an administrator's change is seen within the second.
    /// </summary>
    public static int UnprivilegedPortStart()
    {
        long now = Environment.TickCount64;
        var (value, readAt) = s_portStart;
        if (readAt != 0 && now - readAt < 1000)
        {
            return value;
        }
        try
        {
            value = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            value = 1024;
        }
        s_portStart = (value, Math.Max(1, now));
        return value;
    }

    private static (int Value, long ReadAt) s_portStart;

    /// <summary>The host's IPv6 addresses, which sockets may bind to as well as its IPv4 one; none without --address6.</summary>
    public IReadOnlyList<NetAddress> HostAddresses6 { get; init; } = [];

    /// <summary>
    /// Checks the rules and reserves the port for a socket whose pipes take <paramref name="pipeBytes"/>; the factory
    /// makes the socket under the same lock.
    /// </summary>
    public NormanSocket Bind(PeerIdentity caller, bool mayBindPrivilegedPorts, byte protocol, NetAddress address, int port, long pipeBytes,
        Func<long, ushort, NormanSocket> create, bool v6Only = false, bool reuseAddress = false, bool reusePort = false, NormanSocket? joining = null)
    {
        // Joining an inherited listener's port (the caller proved it holds that listener): its port is the group's already.
        mayBindPrivilegedPorts |= joining is not null;
        if (!address.IsUnspecified && address != hostAddress && !HostAddresses6.Contains(address))
        {
            throw new ControlException(ControlProtocol.Errors.AddressNotAvailable,
                $"Cannot bind to {address}: it is not this host's address. Bind to {hostAddress} or 0.0.0.0" +
                (HostAddresses6.Count > 0 ? $", or {string.Join(", ", HostAddresses6)} or ::." : " (this host has no IPv6 address: start the daemon with --address6 for IPv6)."));
        }
        if (port is < 0 or > 65535)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"Port {port} is out of range: use 0 to 65535 (0 picks a free port).");
        }
        int privilegedBelow = UnprivilegedPortStart();
        if (port != 0 && port < privilegedBelow && !mayBindPrivilegedPorts)
        {
            throw new ControlException(ControlProtocol.Errors.PermissionDenied,
                $"Permission denied: binding port {port} needs root or the daemon's admin group (ports below {privilegedBelow} are privileged), " +
                $"as the process was when it connected. Use a port of {privilegedBelow} or more, bind as root, or start the daemon with --admin-group.");
        }
        lock (_gate)
        {
            var (held, heldBytes) = _heldByUid.GetValueOrDefault(caller.Uid);
            if (held >= maxSocketsPerUid)
            {
                throw new ControlException(ControlProtocol.Errors.TooManySockets,
                    $"uid {caller.Uid} already holds {held} Norman sockets, the limit. Close some, or raise the daemon's --max-sockets-per-uid.");
            }
            if (heldBytes + pipeBytes > maxPipeBytesPerUid)
            {
                throw new ControlException(ControlProtocol.Errors.OutOfMemory,
                    $"uid {caller.Uid} already holds {heldBytes >> 20} MiB of Norman pipes and this socket needs {pipeBytes >> 20} MiB more; " +
                    $"the limit is {maxPipeBytesPerUid >> 20} MiB. Close sockets, ask for fewer slots, or raise the daemon's --max-pipe-memory-per-uid.");
            }
            var (chosen, kernelHold) = port == 0 ? PickEphemeral(protocol) : ((ushort)port, (IDisposable?)null);
            if (port != 0)
            {
                var holders = _byPort.GetValueOrDefault((protocol, chosen)) ?? [];
                if (joining is null && holders.FirstOrDefault(h => !MayShare(h, caller, protocol, address, v6Only, reuseAddress, reusePort)) is { } holder)
                {
                    throw new ControlException(ControlProtocol.Errors.AddressInUse,
                        $"Address already in use: {IpProtocols.Name(protocol)} port {chosen} is held by {holder.Owner.ProcessName} (pid {holder.Owner.Pid}). " +
                        "Pick another port, or stop that process (norman ss -lp shows who holds what).");
                }
            }
            if (port != 0 && !_kernelHolds.ContainsKey((protocol, chosen)))
            {
                kernelHold = KernelPorts?.TryReserve(protocol, chosen);
                if (KernelPorts is not null && kernelHold is null)
                {
                    throw new ControlException(ControlProtocol.Errors.AddressInUse,
                        $"Address already in use: {IpProtocols.Name(protocol)} port {chosen} is held by a socket of the kernel's stack, which shares " +
                        $"this address with Norman (`ss -lnp 'sport = :{chosen}'` shows whose). Pick another port, or stop that process.");
                }
            }
            try
            {
                var created = create(_nextId++, chosen);
                created.LocalAddress = address;
                created.ReuseAddress = reuseAddress;
                _byId[created.Id] = created;
                _heldByUid[caller.Uid] = (held + 1, heldBytes + created.Region.Length);
                if (!_byPort.TryGetValue((protocol, chosen), out var onPort))
                {
                    _byPort[(protocol, chosen)] = onPort = [];
                }
                onPort.Add(created);
                if (kernelHold is not null)
                {
                    _kernelHolds[(protocol, chosen)] = kernelHold;
                }
                return created;
            }
            catch
            {
                kernelHold?.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// Whether a new socket may share a port with <paramref name="holder"/>, as Linux allows (the dataplane's lookup tells
    /// them apart): one takes only IPv4 and the other only IPv6 (bound to an IPv6 address, or to :: with IPV6_V6ONLY),
    /// or, for UDP, both asked SO_REUSEADDR and they differ in what they receive (one connected, or other local
    /// addresses): iperf3 answers each client from a connected socket beside the one that listens; or both asked
    /// SO_REUSEPORT and are one user's (for TCP: listeners), as Linux's reuseport groups.
    /// </summary>
    private static bool MayShare(NormanSocket holder, PeerIdentity caller, byte protocol, NetAddress address, bool v6Only, bool reuseAddress,
        bool reusePort)
    {
        bool newTakesV4 = address.IsV4 || address == HostInterface.AnyV6 && !v6Only;
        bool newTakesV6 = !address.IsV4;
        bool holderTakesV4 = holder.LocalAddress.IsV4 || holder.Pipe.DualStack;
        bool holderTakesV6 = !holder.LocalAddress.IsV4;
        if (!(newTakesV4 && holderTakesV4) && !(newTakesV6 && holderTakesV6))
        {
            return true;
        }
        if (reusePort && holder.Pipe.ReusePort && holder.Owner.Uid == caller.Uid && (protocol == IpProtocols.Udp || holder.RemotePort == 0))
        {
            return true; // SO_REUSEPORT: one user's group, the dataplane spreads the senders (TCP: the connections) over it
        }
        return protocol == IpProtocols.Udp && reuseAddress && holder.ReuseAddress
            && (holder.RemotePort != 0 || holder.LocalAddress != address);
    }

    /// <summary>A free port of the ephemeral range (and, sharing the kernel's address, one no kernel socket holds, then held).</summary>
    private (ushort Port, IDisposable? KernelHold) PickEphemeral(byte protocol)
    {
        int range = EphemeralLast - EphemeralFirst + 1;
        for (int tried = 0; tried < range; tried++)
        {
            int candidate = _nextEphemeral;
            _nextEphemeral = candidate == EphemeralLast ? EphemeralFirst : candidate + 1;
            if (_byPort.ContainsKey((protocol, (ushort)candidate)))
            {
                continue;
            }
            if (KernelPorts is null)
            {
                return ((ushort)candidate, null);
            }
            if (KernelPorts.TryReserve(protocol, (ushort)candidate) is { } hold)
            {
                return ((ushort)candidate, hold);
            }
        }
        throw new ControlException(ControlProtocol.Errors.NoPortsLeft,
            $"No free port left in the ephemeral range {EphemeralFirst}-{EphemeralLast}. Close sockets, or bind an explicit port.");
    }

    public NormanSocket? Find(long id)
    {
        lock (_gate)
        {
            return _byId.GetValueOrDefault(id);
        }
    }

    /// <summary>
    /// Counts memory a connection keeps from a closed socket, for its next bind, as one of its user's sockets: kept
    /// memory is still memory and a mapping, so closing and keeping never takes a user past its limits. False when it
    /// would (the memory is then freed).
    /// </summary>
    public bool TryHoldKept(int uid, long bytes)
    {
        lock (_gate)
        {
            var (held, heldBytes) = _heldByUid.GetValueOrDefault(uid);
            if (held >= maxSocketsPerUid || heldBytes + bytes > maxPipeBytesPerUid)
            {
                return false;
            }
            _heldByUid[uid] = (held + 1, heldBytes + bytes);
            return true;
        }
    }

    /// <summary>Sockets (and kept memory, <see cref="TryHoldKept"/>) counted against <paramref name="uid"/>'s limit now.</summary>
    public int HeldBy(int uid)
    {
        lock (_gate)
        {
            return _heldByUid.GetValueOrDefault(uid).Sockets;
        }
    }

    /// <summary>Kept memory given to a bind, or freed: no longer counted (<see cref="TryHoldKept"/>).</summary>
    public void ReleaseKept(int uid, long bytes)
    {
        lock (_gate)
        {
            var (held, heldBytes) = _heldByUid[uid];
            if (held == 1)
            {
                _heldByUid.Remove(uid);
            }
            else
            {
                _heldByUid[uid] = (held - 1, heldBytes - bytes);
            }
        }
    }

    /// <summary>Forgets a socket: its port is free again at once. The caller releases its memory once the dataplane lets go.</summary>
    public void Remove(NormanSocket socket)
    {
        lock (_gate)
        {
            var key = (socket.Pipe.Protocol, socket.LocalPort);
            if (!_byId.Remove(socket.Id))
            {
                return;
            }
            var (held, heldBytes) = _heldByUid[socket.Owner.Uid];
            if (held == 1)
            {
                _heldByUid.Remove(socket.Owner.Uid);
            }
            else
            {
                _heldByUid[socket.Owner.Uid] = (held - 1, heldBytes - socket.Region.Length);
            }
            if (_byPort.TryGetValue(key, out var onPort))
            {
                onPort.Remove(socket);
                if (onPort.Count == 0)
                {
                    _byPort.Remove(key);
                    if (_kernelHolds.Remove(key, out var hold))
                    {
                        hold.Dispose();
                    }
                }
            }
        }
    }

    public List<NormanSocket> Snapshot()
    {
        lock (_gate)
        {
            return _byId.Values.OrderBy(s => s.Id).ToList();
        }
    }
}
