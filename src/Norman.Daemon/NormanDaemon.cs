using Norman.Core.Packets;
using Norman.Core.Protocol;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon;

/// <summary>
/// normand: the control plane and the dataplane in one process. Start it, use it, dispose it; `norman up` runs one
/// until a signal, tests and the benchmark run one in-process.
/// </summary>
public sealed class NormanDaemon : IAsyncDisposable
{
    private readonly DataplaneRunner _runner;
    private readonly ControlServer _server;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _logDrain;
    private bool _disposed;

    private NormanDaemon(Engine engine, DataplaneRunner runner, ControlServer server, ControlPlane plane, SimulatedPeer? peer, Policy.PolicyStore policy,
        Qos.QosStore qos, ILogSink log)
    {
        Policy = policy;
        Qos = qos;
        _logDrain = DrainPacketLogAsync(log, _stopping.Token);
        Engine = engine;
        _runner = runner;
        _server = server;
        Control = plane;
        Peer = peer;
    }

    public Engine Engine { get; }
    /// <summary>The filter policy, for in-process callers (the benchmark); tools go through the control socket.</summary>
    public Policy.PolicyStore Policy { get; }
    /// <summary>The QoS classes, for in-process callers (the benchmark, the demo's chart); tools use the control socket.</summary>
    public Qos.QosStore Qos { get; }
    public ControlPlane Control { get; }
    /// <summary>The Prometheus endpoint, when `--metrics` asked for one.</summary>
    public Observability.MetricsServer? Metrics { get; private init; }
    /// <summary>Next hops copied from the kernel, when Norman shares its address on an xdp port.</summary>
    private KernelNeighbours? KernelNeighbours { get; init; }
    /// <summary>Says when the interface of an afpacket or xdp port goes down, comes back or goes away.</summary>
    private LinkWatcher? Link { get; init; }
    /// <summary>The host at the far end of a virtual wire; null on other ports.</summary>
    public SimulatedPeer? Peer { get; }
    public string SocketPath => _server.Path;
    public long DataplaneAllocatedBytes => _runner.AllocatedBytes;
    public Exception? DataplaneFailure => _runner.Failure;

    public static NormanDaemon Start(DaemonOptions options, ILogSink? log = null)
    {
        log ??= new StderrLog(options.Verbose);
        var (address, prefix) = XdpHostAddress.Resolve(options);
        var mac = XdpHostAddress.Mac(options) ?? (options.Mac is null ? MacAddress.NewLocal() : MacAddress.Parse(options.Mac));
        var gateway = options.Gateway is not null ? NetAddress.Parse(options.Gateway)
            : options.ShareAddress ? KernelNeighbours.DefaultGateway(XdpHostAddress.Device(options)!) : null;
        var host = CreateHost(options, mac, address, prefix, gateway);
        Validate(options, host);
        var (port, peer) = CreatePort(options, host);
        if (options.WireLoss + options.WireDuplicate + options.WireReorder > 0 || options.WireDelayMilliseconds > 0)
        {
            port = new ImpairedPort(port, new WireImpairment(options.WireLoss, options.WireDuplicate, options.WireReorder, seed: 1),
                new WireImpairment(options.WireLoss, options.WireDuplicate, options.WireReorder, seed: 2),
                System.Diagnostics.Stopwatch.Frequency * options.WireDelayMilliseconds / 1000);
        }
        // Sharing the kernel's address, Norman's next hops are the kernel's (ARP for that address is the kernel's).
        var kernelResolutions = options.ShareAddress ? new KernelResolutions() : null;
        var engine = new Engine(port, host, maxTrackedFlows: options.MaxTrackedFlows, kernelResolutions: kernelResolutions)
        {
            VerifyChecksums = options.VerifyChecksums,
        };
        var runner = new DataplaneRunner(engine, options.DataplaneCpu, options.BusyPoll);
        var info = new DaemonInfo
        {
            Version = typeof(NormanDaemon).Assembly.GetName().Version?.ToString() ?? "0",
            Pid = Environment.ProcessId,
            Port = port.Name,
            Address = host.ToString(),
            Mac = mac.ToString(),
        };
        var names = new Policy.AppNames();
        Policy.PolicyStore policy;
        var qos = new Qos.QosStore(engine, names) { LineRateBits = options.LineRateBitsPerSecond };
        try
        {
            policy = new Policy.PolicyStore(engine, names, options.PolicyFile, qos);
        }
        catch
        {
            qos.Dispose();
            port.Dispose();
            throw;
        }
        var xdp = port as Dataplane.Ports.Xdp.XdpPort;
        var socketTable = new SocketTable(address, options.MaxSocketsPerUid, options.MaxPipeBytesPerUid)
        {
            KernelPorts = options.ShareAddress && xdp is not null ? new KernelPortReservations(address, xdp.Steering) : null,
            HostAddresses6 = host.Addresses6,
        };
        // Before the descriptors are counted: the pool's are the daemon's own.
        var pool = options.PipePoolDepth > 0 ? new PipeMemoryPool(options.SlotCount, options.PipePoolDepth) : null;
        var descriptors = DescriptorReserve.ForThisProcess();
        var plane = new ControlPlane(engine, socketTable, info, options.SlotCount, log, policy, names, options.AdminGroup)
        {
            Pool = pool,
            ReadyMaps = new ReadyBitmaps(descriptors),
            Qos = qos,
            Descriptors = descriptors,
            MaxCapturesPerUid = options.MaxCapturesPerUid,
        };
        runner.Start();
        try
        {
            var server = ControlServer.Start(options.ResolvedSocketPath, plane, log, options.SocketMode, options.MaxConnectionsPerUid);
            try
            {
                // The endpoint sees as root does: every socket's process, as the administrator who opted in asked.
                var metrics = options.Metrics is null ? null
                    : new Observability.MetricsServer(options.Metrics, () => plane.Stats(new PeerIdentity(Environment.ProcessId, 0, 0, "metrics", "", "/")));
                var neighbours = kernelResolutions is null || xdp is null ? null : new KernelNeighbours(engine, kernelResolutions, xdp.Device, log);
                string? device = xdp?.Device ?? (port as AfPacketPort)?.Device;
                return new NormanDaemon(engine, runner, server, plane, peer, policy, qos, log)
                {
                    Metrics = metrics,
                    KernelNeighbours = neighbours,
                    Link = device is null ? null : new LinkWatcher(device, log),
                };
            }
            catch
            {
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
                throw;
            }
        }
        catch
        {
            pool?.Dispose();
            qos.Dispose();
            runner.Stop();
            plane.ReadyMaps?.Dispose();
            port.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The host: its IPv4 address, and the IPv6 ones --address6 lists (comma-separated, the first the main one) with a
    /// link-local address made from the MAC as Linux makes one (EUI-64), unless a link-local one is given.
    /// </summary>
    private static HostInterface CreateHost(DaemonOptions options, MacAddress mac, NetAddress address, int prefix, NetAddress? gateway)
    {
        var gateway6 = options.Gateway6 is null ? (NetAddress?)null : NetAddress.Parse(options.Gateway6);
        var given = (options.Address6 ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(HostInterface.ParseCidr6).ToList();
        if (given.Count == 0)
        {
            return options.AcceptRouterAdvertisements
                ? throw new ArgumentException("--accept-ra needs an IPv6 address: give --address6 too.")
                : new HostInterface(mac, address, prefix, gateway, Gateway6: gateway6);
        }
        if (given.DistinctBy(a => a.Address).Count() != given.Count)
        {
            throw new ArgumentException($"--address6 {options.Address6} gives an address twice.");
        }
        var first = given.FirstOrDefault(a => !a.Address.IsLinkLocal6);
        if (first.Address == default)
        {
            first = given[0];
        }
        var more = given.Where(a => a != first).ToList();
        if (!given.Any(a => a.Address.IsLinkLocal6))
        {
            more.Add((HostInterface.LinkLocalFor(mac), 64));
        }
        return new HostInterface(mac, address, prefix, gateway, first.Address, first.PrefixLength, gateway6)
        {
            MoreAddresses6 = more,
            AcceptsRouterAdvertisements = options.AcceptRouterAdvertisements && gateway6 is null,
        };
    }

    /// <summary>Settings that only make sense together: a simulated peer and a gateway on the host's subnet, none of them the host.</summary>
    private static void Validate(DaemonOptions options, HostInterface host)
    {
        if (options.Port == "virtual")
        {
            var peerAddress = PeerAddressOf(options, host);
            if (!peerAddress.IsV4 || !host.IsOnLink(peerAddress) || peerAddress == host.Address || host.IsBroadcast(peerAddress))
            {
                throw new ArgumentException($"The peer {peerAddress} is not a host on this host's subnet {host}: give --peer an address " +
                    "of that subnet other than this host's (or move --address).");
            }
        }
        if (host.Gateway is { } gateway && (!gateway.IsV4 || !host.IsOnLink(gateway) || gateway == host.Address))
        {
            throw new ArgumentException($"The gateway {gateway} is not on this host's subnet {host}: a next hop must be reachable directly.");
        }
        if (options.AcceptRouterAdvertisements && options.Port.StartsWith("xdp:", StringComparison.Ordinal))
        {
            throw new ArgumentException("--accept-ra cannot work on an xdp port: router advertisements go to all nodes (ff02::1), which " +
                "the kernel keeps on an interface it shares with Norman. Give the router as --gateway6 instead.");
        }
        if (host.Gateway6 is { } gateway6 && (host.Address6 is null || gateway6.IsV4 || !host.IsOnLink(gateway6) || gateway6 == host.Address6))
        {
            throw new ArgumentException($"The IPv6 gateway {gateway6} is not on this host's IPv6 link: give --address6, and a --gateway6 inside " +
                "its prefix or link-local (fe80::…).");
        }
    }

    /// <summary>The virtual port's peer: as given, else the subnet's second host address (its first when the second is ours).</summary>
    private static NetAddress PeerAddressOf(DaemonOptions options, HostInterface host)
    {
        if (options.PeerAddress is { } given)
        {
            return NetAddress.Parse(given);
        }
        uint network = host.Address.V4 & host.Netmask;
        return NetAddress.FromV4(host.Address.V4 == network + 2 ? network + 1 : network + 2);
    }

    private static (IPort Port, SimulatedPeer? Peer) CreatePort(DaemonOptions options, HostInterface host)
    {
        if (options.Port == "virtual")
        {
            var peer = new SimulatedPeer(MacAddress.NewLocal(), PeerAddressOf(options, host))
            {
                // The peer has "already resolved" us, as if it had ARPed: its frames can flow from the first one.
                HostMac = host.Mac,
                HostAddress = host.Address,
            };
            return (new VirtualPort(peer, options.LineRateBitsPerSecond), peer);
        }
        if (options.Port.StartsWith("tap:", StringComparison.Ordinal))
        {
            return (new TapPort(options.Port["tap:".Length..], options.Namespace, options.LineRateBitsPerSecond), null);
        }
        if (options.Port.StartsWith("afpacket:", StringComparison.Ordinal))
        {
            return (new AfPacketPort(options.Port["afpacket:".Length..], options.LineRateBitsPerSecond), null);
        }
        if (options.Port.StartsWith("wire:", StringComparison.Ordinal))
        {
            return (new SharedWirePort(options.Port["wire:".Length..], options.LineRateBitsPerSecond), null);
        }
        if (options.Port.StartsWith("xdp:", StringComparison.Ordinal))
        {
            return (new Dataplane.Ports.Xdp.XdpPort(options.Port["xdp:".Length..], host.Address, host.Addresses6, options.ShareAddress,
                options.LineRateBitsPerSecond), null);
        }
        throw new ArgumentException($"Unknown port '{options.Port}': use virtual, wire:NAME (a wire shared with another daemon), tap:DEVICE, " +
            "afpacket:INTERFACE or xdp:INTERFACE.");
    }

    /// <summary>Writes what `log` rules saw to the daemon's log, four times a second, until the daemon stops.</summary>
    private async Task DrainPacketLogAsync(ILogSink log, CancellationToken stopping)
    {
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                await Task.Delay(250, stopping);
                foreach (var line in Policy.DrainLog())
                {
                    log.Packet(line);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _stopping.Cancel();
        // Every step runs even if one before it failed: the last ones give the interface back (GRO, an XDP program),
        // which a stop must never skip. What failed is thrown at the end, together.
        var failures = new List<Exception>();
        await Step(async () => await _logDrain);
        await Step(async () => await (Metrics?.DisposeAsync() ?? ValueTask.CompletedTask));
        await Step(async () => await (KernelNeighbours?.DisposeAsync() ?? ValueTask.CompletedTask));
        await Step(async () => await (Link?.DisposeAsync() ?? ValueTask.CompletedTask));
        // Control first, so departing sessions release their sockets through a still-running dataplane.
        await Step(async () => await _server.DisposeAsync());
        await Step(() => Control.SweepWaitingForExecAsync(all: true));
        StepNow(() => Control.Pool?.Dispose());
        StepNow(() => _runner.Stop());
        StepNow(() => Control.ReadyMaps?.Dispose()); // the dataplane, which reads them, has stopped
        StepNow(() => Qos.Dispose());
        StepNow(() => Engine.Port.Dispose());
        if (failures.Count > 0)
        {
            throw new AggregateException("The daemon stopped, but not cleanly: " + string.Join("; ", failures.Select(f => f.Message)), failures);
        }

        async Task Step(Func<Task> step)
        {
            try
            {
                await step();
            }
            catch (Exception error)
            {
                failures.Add(error);
            }
        }

        void StepNow(Action step)
        {
            try
            {
                step();
            }
            catch (Exception error)
            {
                failures.Add(error);
            }
        }
    }
}
