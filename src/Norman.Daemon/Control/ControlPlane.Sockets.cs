using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Control;

/// <summary>The socket family: bind, connect, close, and the listing ss reads.</summary>
public sealed partial class ControlPlane
{
    private Task<int[]> OnBind(ControlSession session, ControlRequest request, ControlResponse response) =>
        Task.FromResult(Granted(session, Bind(session, request), response));

    /// <summary>A new socket's answer (<see cref="SocketGrant"/>) and the descriptors that go with it.</summary>
    private int[] Granted(ControlSession session, NormanSocket socket, ControlResponse response)
    {
        // Once the application has the memfd and the wake-up's epoll, the daemon's copies go: two descriptors a socket, not four.
        // The pool makes the next sockets' memory after the answer, not while this caller waits for it.
        session.AfterAnswer(() =>
        {
            Descriptors.Return(socket.CloseApplicationEnds(), IsAdministrator(socket.Owner));
            Pool?.TopUp();
        });
        response.Socket = new SocketGrant
        {
            SocketId = socket.Id,
            LocalAddress = socket.LocalAddress.ToString(),
            LocalPort = socket.LocalPort,
            SourceAddress = socket.Pipe.SourceFor(engine.Host.Address, engine.Host)?.ToString() ?? "",
            SourceAddresses6 = socket.Pipe.Sources6(engine.Host) is { Count: > 0 } sources ? [.. sources.Select(s => $"{s.Address}/{s.PrefixLength}")] : null,
            SlotCount = socket.SlotCount,
            SlotSize = socket.SlotSize,
            RegionBytes = socket.Region.Length,
            ReadyBit = socket.Pipe.Ready is null ? null : socket.Pipe.ReadyBit,
            ReadyMapId = socket.Pipe.Ready?.Id,
            ReusedMemory = socket.ReusedMemory,
        };
        int[] memory = socket.ReusedMemory is null ? [socket.Region.Fd] : [];
        return socket.Pipe.Ready is { } ready
            ? [.. memory, socket.Wakeup.ApplicationFd, socket.Doorbell.Fd, ready.Fd]
            : [.. memory, socket.Wakeup.ApplicationFd, socket.Doorbell.Fd];
    }

    private Task<int[]> OnConnect(ControlSession session, ControlRequest request, ControlResponse response)
    {
        Connect(session, request);
        return NoDescriptors;
    }

    /// <summary>
    /// Answers once the port is free; the dataplane's letting go and the unmapping finish behind the answer (the
    /// connection's next request need not wait for them: a process that closes and opens sockets in turn paid both).
    /// </summary>
    private Task<int[]> OnClose(ControlSession session, ControlRequest request, ControlResponse response)
    {
        var socket = OwnedSocket(session, request);
        var closing = CloseAsync(session, socket, keepMemory: request.KeepMemory == true);
        if (!closing.IsCompleted)
        {
            session.Finishing(closing);
        }
        return NoDescriptors;
    }

    /// <summary>A TCP listener stops listening, its connections going on: in a reuseport group the others take the new ones.</summary>
    private Task<int[]> OnStopListening(ControlSession session, ControlRequest request, ControlResponse response)
    {
        var socket = OwnedSocket(session, request);
        if (socket.Pipe.Protocol != IpProtocols.Tcp)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"Socket {socket.Id} is not a TCP socket: only a listener stops listening.");
        }
        engine.Post(new StopListeningCommand(socket.Pipe));
        return NoDescriptors;
    }

    private Task<int[]> OnSockets(ControlSession session, ControlRequest request, ControlResponse response)
    {
        (response.Sockets, response.NextCursor) = ListingPage.Take(
            sockets.Snapshot().SelectMany(s => DescribeWithConnections(s, session.Identity, engine.Qos, engine.Host)),
            request.Cursor ?? 0, ControlJson.Default.SocketInfo);
        return NoDescriptors;
    }

    /// <summary>
    /// The daemon's descriptors a socket takes while it is bound: its memory, wake-up and doorbell, and its kernel socket
    /// when the kernel shares the address (two of them go once the bind is answered).
    /// </summary>
    private int DescriptorsPerSocket => NormanSocket.Descriptors + (sockets.KernelPorts is null ? 0 : 1);

    private NormanSocket Bind(ControlSession session, ControlRequest request)
    {
        byte protocol = (request.Protocol ?? "udp").ToLowerInvariant() switch
        {
            "udp" => IpProtocols.Udp,
            // The TCP stack is the application's (the client library's); the daemon carries its segments.
            "tcp" => IpProtocols.Tcp,
            var other => throw new ControlException(ControlProtocol.Errors.Unsupported, $"Unknown protocol '{other}': use udp or tcp."),
        };
        var address = ParseAddress(request.Address ?? "0.0.0.0");
        int slotCount = request.SlotCount ?? defaultSlotCount;
        if (!PipeLayout.IsValidGeometry(slotCount, PipeLayout.DefaultSlotSize))
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"A pipe of {slotCount} slots is not allowed: use a power of two from {PipeLayout.MinSlotCount} to {PipeLayout.MaxSlotCount}.");
        }
        var identity = session.Identity;
        bool ordinary = !IsAdministrator(identity);
        // Memory this connection's application kept mapped from a socket it closed: nothing to map or touch for it, and
        // no memfd for the daemon to hold.
        var kept = session.Kept.Take(request.KeptMemory, slotCount, tcp: protocol == IpProtocols.Tcp);
        int descriptors = DescriptorsPerSocket - (kept is null ? 0 : 1);
        if (!Descriptors.TryTake(descriptors, administrator: !ordinary))
        {
            kept?.Region.Dispose(); // the caller forgets what it kept when a bind fails, so the daemon does too
            throw new ControlException(ControlProtocol.Errors.TooManySockets, "Cannot open a socket: " + Descriptors.Refusal(identity.Uid, !ordinary));
        }
        NormanSocket socket;
        try
        {
            socket = sockets.Bind(identity, !ordinary, protocol, address, request.Port ?? 0,
                PipeLayout.SocketRegionBytes(slotCount, PipeLayout.DefaultSlotSize, tcp: protocol == IpProtocols.Tcp),
                (id, port) => MakeSocket(id, port, identity, protocol, address, slotCount, v6Only: request.V6Only == true && !address.IsV4,
                    reusePort: request.ReusePort == true, kept?.Region),
                v6Only: request.V6Only == true && !address.IsV4, reuseAddress: request.ReuseAddress == true, reusePort: request.ReusePort == true);
        }
        catch
        {
            Descriptors.Return(descriptors, administrator: !ordinary);
            kept?.Region.Dispose();
            throw;
        }
        socket.ReusedMemory = kept?.Id;
        Serve(session, socket);
        return socket;
    }

    /// <summary>
    /// A bound socket becomes its session's and the dataplane's. Answered without waiting for the dataplane (a thread
    /// wake-up each way, most of a bind's time): the commands are applied in order before anything the application
    /// sends through the socket, and before any frame the port receives after this answer (Engine.Receive), so the
    /// socket is there for everything that can know of it.
    /// </summary>
    private void Serve(ControlSession session, NormanSocket socket)
    {
        var identity = session.Identity;
        byte protocol = socket.Pipe.Protocol;
        session.Own(socket);
        var add = new AddSocketCommand(socket.Pipe);
        engine.Post(add);
        _ = add.Applied.ContinueWith(failed => log.Warn($"socket {socket.Id} ({IpProtocols.Name(protocol)} port {socket.LocalPort} of " +
            $"{identity.ProcessName}, pid {identity.Pid}) is served, but a sleeping dataplane finds its packets only at its timer: " +
            $"{failed.Exception?.InnerException?.Message}. Raise fs.epoll.max_user_watches or free memory."),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        log.Info($"bind {IpProtocols.Name(protocol)} {socket.LocalAddress}:{socket.LocalPort} by {identity.ProcessName} (pid {identity.Pid}, uid {identity.Uid})");
    }

    /// <summary>A bound socket's record, over pooled memory where the pool has some, with a bit in its user's ready map.</summary>
    private NormanSocket MakeSocket(long id, ushort port, PeerIdentity identity, byte protocol, NetAddress address, int slotCount, bool v6Only,
        bool reusePort, Norman.Core.Shm.SharedMemory? kept)
    {
        var (ready, bit) = ReadyMaps?.Take(identity.Uid) ?? (null, -1);
        try
        {
            return new NormanSocket(id, identity, protocol, address, port, slotCount, PipeLayout.DefaultSlotSize,
                appNames.IdOf(identity.AppName), appNames.IdOf(AppNames.CgroupKey(identity.Cgroup)),
                appNames.IdOf(AppNames.ExecutableKey(identity.Executable)), v6Only,
                memory: kept is not null ? PipeMemory.Reuse(kept, slotCount, PipeLayout.DefaultSlotSize)
                    : Pool?.Take(slotCount, PipeLayout.DefaultSlotSize, tcp: protocol == IpProtocols.Tcp), ready: ready, readyBit: bit,
                reusePort: reusePort);
        }
        catch
        {
            ready?.Release(bit);
            throw;
        }
    }

    /// <summary>
    /// Fixes a socket's remote end, answered without waiting for the dataplane, as a bind is: the command is applied
    /// before anything the application sends after the answer, and before the demultiplexing of any frame read after it.
    /// </summary>
    private void Connect(ControlSession session, ControlRequest request)
    {
        var socket = OwnedSocket(session, request);
        var remote = ParseAddress(request.RemoteAddress ?? throw new ControlException(ControlProtocol.Errors.InvalidArgument, "connect needs remoteAddress."));
        int port = request.RemotePort ?? 0;
        if (port is <= 0 or > 65535 || remote.IsUnspecified)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"Cannot connect to {remote}:{port}: give a real address and a port from 1 to 65535.");
        }
        // As Linux does, a wildcard-bound socket takes the host's address (of the remote's family) as its source once connected.
        var local = socket.Pipe.SourceFor(remote, engine.Host) ?? throw new ControlException(ControlProtocol.Errors.AddressFamilyNotSupported,
            $"Cannot connect a socket bound to {socket.LocalAddress} to {remote}: " + (remote.IsV4
                ? "it is an IPv6-only socket (or bound to an IPv6 address). Bind to :: without v6-only, or to an IPv4 address."
                : socket.LocalAddress.IsV4 ? "it is an IPv4 socket. Bind to :: (or this host's IPv6 address) for IPv6."
                : "this host has no IPv6 address: start the daemon with --address6."));
        var connect = new ConnectSocketCommand(socket.Pipe, local, remote, (ushort)port);
        engine.Post(connect);
        _ = connect.Applied.ContinueWith(failed => log.Warn($"connecting socket {socket.Id} of {session.Who} to {remote}:{port} failed in the dataplane: " +
            $"{failed.Exception?.InnerException?.Message}"), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        socket.RemoteAddress = remote;
        socket.RemotePort = (ushort)port;
    }

    /// <summary>
    /// Releases a socket: its port at once, its memory once the dataplane has stopped serving it. With
    /// <paramref name="keepMemory"/> (the application keeps its mapping) the memory is emptied and kept for the
    /// connection's next bind instead, within its user's limits.
    /// </summary>
    public async Task CloseAsync(ControlSession? session, NormanSocket socket, bool keepMemory = false)
    {
        sockets.Remove(socket);
        session?.Disown(socket);
        var remove = new RemoveSocketCommand(socket.Pipe);
        engine.Post(remove);
        await remove.Applied;
        int held = socket.HeldDescriptors + (socket.Holder >= 0 ? 1 : 0) + (sockets.KernelPorts is null ? 0 : 1);
        if (keepMemory && session is not null && socket.DisposeKeepingMemory() is { } memory)
        {
            if (!session.Kept.TryKeep(socket.Id, memory, socket.SlotCount, tcp: socket.Pipe.Protocol == IpProtocols.Tcp))
            {
                memory.Dispose();
            }
        }
        else
        {
            socket.Dispose();
        }
        held += socket.ConnectionHoldersClosed;
        Descriptors.Return(held, IsAdministrator(socket.Owner));
        log.Info($"close {IpProtocols.Name(socket.Pipe.Protocol)} {socket.LocalAddress}:{socket.LocalPort} of {socket.Owner.ProcessName} (pid {socket.Owner.Pid})");
    }

    private NormanSocket OwnedSocket(ControlSession session, ControlRequest request)
    {
        long id = request.SocketId ?? throw new ControlException(ControlProtocol.Errors.InvalidArgument, "This operation needs socketId.");
        return session.Find(id) ?? throw new ControlException(ControlProtocol.Errors.NoSuchSocket,
            $"Socket {id} is not one of this connection's sockets.");
    }

    /// <summary>An address for a socket, IPv4 or IPv6; a link-local one may carry a scope (fe80::1%eth1): Norman has one link.</summary>
    private static NetAddress ParseAddress(string text)
    {
        NetAddress address;
        try
        {
            int scope = text.IndexOf('%');
            address = NetAddress.Parse(scope >= 0 ? text[..scope] : text);
            if (scope >= 0 && !address.IsLinkLocal6)
            {
                throw new FormatException($"'{text}': only a link-local address (fe80::…) takes a scope.");
            }
        }
        catch (FormatException error)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, error.Message);
        }
        return address;
    }

    /// <summary>Milliseconds since a Stopwatch timestamp; -1 for one never taken (0).</summary>
    private static long Age(long ticks) =>
        ticks == 0 ? -1 : (long)System.Diagnostics.Stopwatch.GetElapsedTime(ticks).TotalMilliseconds;

    /// <summary>ss's TCP states by the client library's numbering (<c>Norman.Client.Tcp.TcpState</c>).</summary>
    private static readonly string[] TcpStateNames = ["CLOSE", "SYN-SENT", "SYN-RECV", "ESTAB", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"];

    /// <summary>
    /// A socket as ss shows it and, for a listening TCP socket, each connection its application's stack reports
    /// (state, queues, remote end), with the socket's own local end and owner.
    /// </summary>
    /// <remarks>A connection's local address is the host's where its socket listens on the wildcard, as ss shows a kernel's.</remarks>
    private static IEnumerable<SocketInfo> DescribeWithConnections(NormanSocket socket, PeerIdentity viewer, Qos.QosSnapshot qos, HostInterface host)
    {
        var connections = socket.Connections();
        if (socket.RemotePort != 0 && connections.Count == 1)
        {
            yield return Describe(socket, viewer, qos, connections[0], host: host); // a client socket: its one connection is the socket
            yield break;
        }
        yield return Describe(socket, viewer, qos);
        foreach (var connection in connections)
        {
            yield return Describe(socket, viewer, qos, connection, socketRow: false, host: host);
        }
    }

    /// <summary>
    /// A connection's two ends as ss shows them: the host's address of the connection's family where the socket listens
    /// on a wildcard, and on an IPv6 socket the ends of an IPv4 connection v4-mapped (::ffff:198.18.0.2), as Linux shows a
    /// dual-stack socket's.
    /// </summary>
    private static (string Local, string Remote) ConnectionEnds(NormanSocket socket, NetAddress remote, HostInterface? host)
    {
        var local = socket.LocalAddress.IsUnspecified && host?.SourceFor(remote) is { } ours ? ours : socket.LocalAddress;
        bool mapped = !socket.LocalAddress.IsV4 && remote.IsV4;
        return (Show(local), Show(remote));
        string Show(NetAddress address) => mapped ? address.ToIPAddress().MapToIPv6().ToString() : address.ToString();
    }

    private static string StateName(byte state) => state < TcpStateNames.Length ? TcpStateNames[state] : "UNKNOWN";

    /// <summary>
    /// What ss shows. As on Linux, process details of other users' sockets are shown only to root. With a TCP
    /// connection its stack reports, the row shows the connection's state, remote end and queues; a listener's
    /// connection rows (not the socket's row) carry no traffic counters, which are the socket's alone.
    /// </summary>
    private static SocketInfo Describe(NormanSocket socket, PeerIdentity viewer, Qos.QosSnapshot qos,
        ConnectionTable.Record? connection = null, bool socketRow = true, HostInterface? host = null)
    {
        var (localAddress, remoteAddress) = connection is { } ends ? ConnectionEnds(socket, ends.RemoteAddress, host)
            : socket.RemotePort != 0 ? ConnectionEnds(socket, socket.RemoteAddress, null)
            : (socket.LocalAddress.ToString(), "*");
        // Read racily, for display: the dataplane classifies a socket when it first schedules it under a policy.
        var choice = socket.Pipe.SendingQos;
        bool showProcess = viewer.IsRoot || viewer.Uid == socket.Owner.Uid;
        var counters = socket.Pipe.Counters;
        var (challengeAcks, resetsIgnored) = socketRow && connection is null ? socket.TcpTotals() : (0, 0);
        return new SocketInfo
        {
            Id = socket.Id,
            Protocol = IpProtocols.Name(socket.Pipe.Protocol),
            State = connection is { } c ? StateName(c.State)
                : socket.RemotePort != 0 ? "ESTAB" : socket.Pipe.Protocol == IpProtocols.Tcp ? "LISTEN" : "UNCONN",
            LocalAddress = localAddress,
            LocalPort = socket.LocalPort,
            RemoteAddress = remoteAddress,
            RemotePort = connection?.RemotePort ?? socket.RemotePort,
            Pid = showProcess ? socket.Owner.Pid : 0,
            Uid = socket.Owner.Uid,
            ProcessName = showProcess ? socket.Owner.ProcessName : "",
            CommandLine = showProcess && socketRow ? socket.Owner.CommandLine : "",
            RecvQ = connection is { } q ? (int)Math.Min(q.ReceiveQueue, int.MaxValue) : socket.RxQueued,
            SendQ = connection is { } w ? (int)Math.Min(w.SendQueue, int.MaxValue) : socket.TxQueued,
            RxPackets = socketRow ? counters.RxPackets : 0,
            RxBytes = socketRow ? counters.RxBytes : 0,
            TxPackets = socketRow ? counters.TxPackets : 0,
            TxBytes = socketRow ? counters.TxBytes : 0,
            Drops = socketRow ? counters.DropSnapshot() : [],
            SlotCount = socket.SlotCount,
            SlotSize = socket.SlotSize,
            Wakeups = counters.Wakeups,
            TxThrottled = socketRow ? counters.TxThrottled : 0,
            TcpChallengeAcks = challengeAcks,
            TcpResetsIgnored = resetsIgnored,
            LastReceiveMilliseconds = Age(counters.LastRxTicks),
            LastSendMilliseconds = Age(counters.LastTxTicks),
            QosClass = choice.Generation == qos.Generation && choice.Class < qos.Classes.Length ? qos.Classes[choice.Class].Settings.Name : null,
            Tcp = connection is { } t ? new TcpConnectionInfo
            {
                CongestionControl = ConnectionTable.CongestionControlName(t.Features),
                Timestamps = ConnectionTable.UsesTimestamps(t.Features),
                Sack = ConnectionTable.UsesSack(t.Features),
                RttMicroseconds = t.RttMicroseconds,
                RtoMilliseconds = t.RtoMilliseconds,
                Mss = t.Mss,
                CongestionWindowBytes = t.CongestionWindow,
                Retransmits = t.Retransmits,
                ChallengeAcks = t.ChallengeAcks,
                ResetsIgnored = t.ResetsIgnored,
            } : null,
        };
    }
}
