using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Control;

/// <summary>
/// The kernel's half of normand: it alone decides who may open which socket, creates the shared memory, tells
/// the dataplane what to serve and releases everything a departed application held.
/// Each handler takes the caller's kernel-given identity and a request, and returns a response (and fds to pass).
/// </summary>
public sealed class ControlPlane(Engine engine, SocketTable sockets, DaemonInfo info, int defaultSlotCount, ILogSink log,
    PolicyStore policy, AppNames appNames, int? adminGroup = null)
{
    public SocketTable Sockets => sockets;

    /// <summary>The daemon's descriptors that ordinary users' connections, sockets and captures may hold (the rest are root's).</summary>
    public DescriptorReserve Descriptors { get; init; } = new(int.MaxValue, 0);

    /// <summary>Captures one ordinary user may run at once (each holds a ring and two descriptors in the daemon).</summary>
    public int MaxCapturesPerUid
    {
        get => (int)_captures.LimitPerUid;
        init => _captures = new UserBudget(value);
    }

    public const int DefaultMaxCapturesPerUid = 16;

    private readonly UserBudget _captures = new(DefaultMaxCapturesPerUid);

    /// <summary>The QoS classes `norman qos` shows and changes.</summary>
    public Qos.QosStore? Qos { get; init; }

    public async Task<(ControlResponse Response, int[] Fds)> HandleAsync(ControlSession session, ControlRequest request)
    {
        if (request.Version != ControlProtocol.Version)
        {
            throw new ControlException(ControlProtocol.Errors.BadVersion,
                $"This daemon speaks control protocol version {ControlProtocol.Version}, the caller {request.Version}: use a client library and daemon of the same Norman release.");
        }
        if (!OperationPrivileges.All.TryGetValue(request.Op ?? "", out var privilege))
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"Unknown operation '{request.Op}'. Known: {string.Join(", ", OperationPrivileges.All.Keys)}.");
        }
        if (privilege.Needs == Privilege.Administrator)
        {
            RequireAdministrator(session.Identity, privilege.What);
        }
        var response = new ControlResponse { Id = request.Id, Ok = true };
        switch (request.Op)
        {
            case ControlProtocol.Ops.Hello:
                response.Daemon = info;
                return (response, []);
            case ControlProtocol.Ops.Bind:
                var socket = await BindAsync(session, request);
                response.Socket = new SocketGrant
                {
                    SocketId = socket.Id,
                    LocalAddress = socket.LocalAddress.ToString(),
                    LocalPort = socket.LocalPort,
                    SourceAddress = (socket.LocalAddress.IsUnspecified ? engine.Host.Address : socket.LocalAddress).ToString(),
                    SlotCount = socket.SlotCount,
                    SlotSize = socket.SlotSize,
                    RegionBytes = socket.Region.Length,
                };
                return (response, [socket.Region.Fd, socket.Wakeup.Fd]);
            case ControlProtocol.Ops.Connect:
                await ConnectAsync(session, request);
                return (response, []);
            case ControlProtocol.Ops.Close:
                await CloseAsync(session, OwnedSocket(session, request));
                return (response, []);
            case ControlProtocol.Ops.Sockets:
                (response.Sockets, response.NextCursor) = ListingPage.Take(
                    sockets.Snapshot().SelectMany(s => DescribeWithConnections(s, session.Identity, engine.Qos, engine.Host.Address)),
                    request.Cursor ?? 0, ControlJson.Default.SocketInfo);
                return (response, []);
            case ControlProtocol.Ops.Counters:
                response.Counters = Counters();
                return (response, []);
            case ControlProtocol.Ops.Stats:
                response.Stats = Stats(session.Identity);
                return (response, []);
            case ControlProtocol.Ops.Conntrack:
                response.Conntrack = await ListConntrackAsync().ConfigureAwait(false);
                return (response, []);
            case ControlProtocol.Ops.FilterList:
                response.Filter = DescribeFilter();
                return (response, []);
            case ControlProtocol.Ops.FilterTrace:
                response.Trace = Trace(request);
                return (response, []);
            case ControlProtocol.Ops.FilterTraceStart:
                engine.Trace = await CompileAsync(session.Identity, request.Expression ?? "ip or ip6",
                    expression => new TraceTap(expression, Math.Clamp(request.Count ?? 10, 1, 100_000)));
                response.Trace = new TraceInfo { Remaining = engine.Trace.Remaining, Events = [] };
                return (response, []);
            case ControlProtocol.Ops.CaptureStart:
                var tap = await StartCaptureAsync(session, request);
                response.Capture = DescribeCapture(tap, !IsAdministrator(session.Identity));
                return (response, [tap.Region.Fd, tap.Wakeup.Fd]);
            case ControlProtocol.Ops.CaptureStats:
                var mine = session.FindTap(request.Handle ?? -1)
                    ?? throw new ControlException(ControlProtocol.Errors.NoSuchSocket, $"Capture {request.Handle} is not one of this connection's.");
                response.Capture = DescribeCapture(mine, mine.OnlyUid >= 0);
                return (response, []);
            case ControlProtocol.Ops.FilterTracePoll:
                response.Trace = PollTrace();
                return (response, []);
            case ControlProtocol.Ops.FilterTraceStop:
                engine.Trace = null;
                return (response, []);
            case ControlProtocol.Ops.FilterSave:
                response.Filter = new FilterInfo { Lines = policy.Save().ToList() };
                return (response, []);
            case ControlProtocol.Ops.FilterAdd or ControlProtocol.Ops.FilterDelete or ControlProtocol.Ops.FilterFlush
                or ControlProtocol.Ops.FilterPolicy or ControlProtocol.Ops.FilterRestore or ControlProtocol.Ops.FilterSetAdd
                or ControlProtocol.Ops.FilterSetDelete or ControlProtocol.Ops.FilterElementAdd or ControlProtocol.Ops.FilterElementDelete:
                // Off the control loop: a rule's pcap expression can take libpcap a second or more (see PcapFilter).
                var wouldBe = await Task.Factory.StartNew(() => ChangeFilter(session.Identity, request), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default);
                response.Filter = DescribeFilter();
                response.Filter.Lines = wouldBe?.ToList();
                return (response, []);
            case ControlProtocol.Ops.QosShow:
                response.Qos = DescribeQos();
                return (response, []);
            case ControlProtocol.Ops.QosAdd or ControlProtocol.Ops.QosChange or ControlProtocol.Ops.QosDelete
                or ControlProtocol.Ops.QosMatchAdd or ControlProtocol.Ops.QosMatchDelete:
                ChangeQos(session.Identity, request);
                response.Qos = DescribeQos();
                return (response, []);
            default:
                throw new InvalidOperationException($"Operation '{request.Op}' is in the privilege table but has no handler.");
        }
    }

    private long _nextTapId;

    /// <summary>
    /// Root, or a member of the admin group, as the kernel told them at connect (see <see cref="PeerIdentity"/>). A
    /// non-root process's capabilities do not count: the kernel does not record them at connect, and what /proc says
    /// later is whatever the pid runs by then.
    /// </summary>
    public bool IsAdministrator(PeerIdentity caller) => caller.IsRoot || (adminGroup is { } group && caller.InGroup(group));

    private async Task<Capture.CaptureTap> StartCaptureAsync(ControlSession session, ControlRequest request)
    {
        var caller = session.Identity;
        string direction = request.Chain ?? "any";
        if (direction is not ("ingress" or "egress" or "any" or "port"))
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"'{direction}' is not a capture point: use ingress, egress, any or port.");
        }
        bool ordinary = !IsAdministrator(caller);
        TakeCapture(caller, ordinary);
        Capture.CaptureTap tap;
        try
        {
            // An ordinary user sees only their own sockets' packets, as they could see them in their own process.
            tap = await CompileAsync(caller, request.Expression ?? "", expression => new Capture.CaptureTap(Interlocked.Increment(ref _nextTapId),
                expression, request.SnapLength ?? 262144,
                direction is "ingress" or "any" or "port", direction is "egress" or "any" or "port", ordinary ? caller.Uid : -1,
                request.App is null ? -1 : appNames.IdOf(request.App), request.AfterFilter ?? false, atPort: direction == "port"));
        }
        catch
        {
            ReturnCapture(caller.Uid, ordinary);
            throw;
        }
        session.Own(tap);
        var add = new AddTapCommand(tap);
        engine.Post(add);
        await add.Applied;
        log.Info($"capture {tap.Id} '{tap.Expression}' on {direction} by {caller.ProcessName} (pid {caller.Pid}, uid {caller.Uid})");
        return tap;
    }

    /// <summary>Stops a capture of the session's: the dataplane lets go of it first, then its memory and descriptors go.</summary>
    public async Task StopCaptureAsync(ControlSession session, Capture.CaptureTap tap)
    {
        if (!session.Disown(tap))
        {
            return;
        }
        var remove = new RemoveTapCommand(tap);
        engine.Post(remove);
        await remove.Applied;
        tap.Dispose();
        ReturnCapture(tap.OnlyUid, ordinary: tap.OnlyUid >= 0);
    }

    /// <summary>An ordinary user's filter expression: at most this long (libpcap takes about 0.15 s at worst on it; see PcapFilter).</summary>
    public const int MaxOrdinaryExpressionBytes = 1024;

    /// <summary>Compilations an ordinary user may have under way at once.</summary>
    private readonly UserBudget _compiles = new(1);

    /// <summary>
    /// Builds what needs a libpcap expression compiled on a thread of its own, not the control loop's: a long compile
    /// keeps no one else's request waiting (libpcap compiles one at a time, so only other compiles queue). An ordinary
    /// user's expression is bounded tighter than an administrator's, and one of theirs compiles at a time.
    /// </summary>
    private async Task<T> CompileAsync<T>(PeerIdentity caller, string expression, Func<string, T> build)
    {
        bool ordinary = !IsAdministrator(caller);
        int bytes = System.Text.Encoding.UTF8.GetByteCount(expression);
        if (ordinary && bytes > MaxOrdinaryExpressionBytes)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"A filter expression of {bytes} bytes is over the {MaxOrdinaryExpressionBytes}-byte limit for an ordinary user " +
                $"(administrators: {PcapFilter.MaxExpressionBytes}). Use a shorter one.");
        }
        if (ordinary && !_compiles.TryTake(caller.Uid, 1))
        {
            throw new ControlException(ControlProtocol.Errors.Busy,
                $"uid {caller.Uid} already has a filter expression compiling; wait for it to finish.");
        }
        try
        {
            log.Info($"compiling a {bytes}-byte filter expression for {caller.ProcessName} (pid {caller.Pid}, uid {caller.Uid})");
            return await Task.Factory.StartNew(() => build(expression), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch (PcapFilterException error)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, error.Message);
        }
        finally
        {
            if (ordinary)
            {
                _compiles.Return(caller.Uid, 1);
            }
        }
    }

    /// <summary>A capture: two of the daemon's descriptors, and for an ordinary user one of their <see cref="MaxCapturesPerUid"/>.</summary>
    private void TakeCapture(PeerIdentity caller, bool ordinary)
    {
        if (ordinary && !_captures.TryTake(caller.Uid, 1))
        {
            throw new ControlException(ControlProtocol.Errors.TooManySockets,
                $"uid {caller.Uid} already runs {_captures.Held(caller.Uid)} captures, the limit for an ordinary user. Stop one, or capture as root.");
        }
        if (!Descriptors.TryTake(Capture.CaptureTap.Descriptors, administrator: !ordinary))
        {
            if (ordinary)
            {
                _captures.Return(caller.Uid, 1);
            }
            throw new ControlException(ControlProtocol.Errors.TooManySockets, "Cannot start a capture: " + Descriptors.Refusal(caller.Uid, !ordinary));
        }
    }

    private void ReturnCapture(int uid, bool ordinary)
    {
        if (ordinary)
        {
            _captures.Return(uid, 1);
        }
        Descriptors.Return(Capture.CaptureTap.Descriptors, administrator: !ordinary);
    }

    private static CaptureInfo DescribeCapture(Capture.CaptureTap tap, bool ownOnly) => new()
    {
        TapId = tap.Id,
        SlotCount = Norman.Core.Capture.CaptureRecord.SlotCount,
        SlotSize = Norman.Core.Capture.CaptureRecord.SlotSize,
        RegionBytes = tap.Region.Length,
        SnapLength = tap.SnapLength,
        Captured = Volatile.Read(ref tap.Captured),
        Dropped = Volatile.Read(ref tap.Dropped),
        OwnPacketsOnly = ownOnly,
    };

    private void RequireAdministrator(PeerIdentity caller, string what)
    {
        if (!IsAdministrator(caller))
        {
            throw new ControlException(ControlProtocol.Errors.NotPermitted,
                $"Operation not permitted: {what} needs root" +
                (adminGroup is { } g ? $" or membership of group {g}" : " (or the group the daemon's --admin-group names)") +
                $", and {caller.ProcessName} connected as uid {caller.Uid}. Run it with sudo.");
        }
    }

    private TraceInfo PollTrace()
    {
        var tap = engine.Trace;
        if (tap is null)
        {
            return new TraceInfo { Events = [], Remaining = 0 };
        }
        var rules = policy.List().Rules.ToDictionary(r => r.Rule.Handle, r => r.Rule.ToString());
        var events = new List<string>();
        foreach (var r in tap.Take())
        {
            var text = new System.Text.StringBuilder();
            text.Append($"trace {r.Packet.Describe()} ({r.Packet.Owner(appNames.NameOf)})");
            for (int m = 0; m < Math.Min(r.MatchedCount, TraceTap.MaxMatched); m++)
            {
                long handle = TraceTap.MatchedAt(r, m);
                text.Append($"\n  rule {rules.GetValueOrDefault(handle, "(since deleted)")} (handle {handle}) match");
            }
            text.Append($"\n  verdict {r.Verdict.ToString().ToLowerInvariant()}" + (r.DecidedBy == 0 ? " (policy)" : $" (rule {r.DecidedBy})"));
            events.Add(text.ToString());
        }
        if (tap.Remaining == 0 && events.Count == 0)
        {
            engine.Trace = null;
        }
        return new TraceInfo { Events = events, Remaining = tap.Remaining };
    }

    /// <summary>Changes the filter as the request says; a dry-run restore changes nothing and returns the policy's lines as they would be.</summary>
    private IReadOnlyList<string>? ChangeFilter(PeerIdentity caller, ControlRequest request)
    {
        string who = $"{caller.ProcessName} (pid {caller.Pid}, uid {caller.Uid})";
        try
        {
            switch (request.Op)
            {
                case ControlProtocol.Ops.FilterAdd:
                    var rule = policy.Add(PolicyStore.ParseChain(request.Chain ?? ""), request.Rule ?? [], request.Insert ?? false);
                    log.Info($"filter: {who} added to {request.Chain}: {rule} (handle {rule.Handle})");
                    break;
                case ControlProtocol.Ops.FilterDelete:
                    if (!policy.Delete(request.Handle ?? -1))
                    {
                        throw new ControlException(ControlProtocol.Errors.NotFound, $"There is no rule with handle {request.Handle}: `norman filter list` shows the handles.");
                    }
                    log.Info($"filter: {who} deleted rule {request.Handle}");
                    break;
                case ControlProtocol.Ops.FilterFlush:
                    policy.Flush(request.Chain is null ? null : PolicyStore.ParseChain(request.Chain));
                    log.Info($"filter: {who} flushed {request.Chain ?? "both chains"}");
                    break;
                case ControlProtocol.Ops.FilterPolicy:
                    policy.SetPolicy(PolicyStore.ParseChain(request.Chain ?? ""), Enum.Parse<FilterAction>(request.Policy ?? "", ignoreCase: true));
                    log.Info($"filter: {who} set the {request.Chain} policy to {request.Policy}");
                    break;
                case ControlProtocol.Ops.FilterRestore:
                    var after = policy.Restore(request.Lines ?? [], "the restored policy", request.DryRun ?? false, request.AllowEmpty ?? false);
                    if (request.DryRun ?? false)
                    {
                        return after;
                    }
                    log.Info($"filter: {who} restored a policy file; {policy.List().Rules.Count} rules in force");
                    break;
                case ControlProtocol.Ops.FilterSetAdd:
                    policy.AddSet(request.SetName ?? "", request.SetType ?? "", request.Elements ?? []);
                    log.Info($"filter: {who} added set {request.SetName} ({request.Elements?.Count ?? 0} elements)");
                    break;
                case ControlProtocol.Ops.FilterSetDelete:
                    policy.DeleteSet(request.SetName ?? "");
                    log.Info($"filter: {who} deleted set {request.SetName}");
                    break;
                case ControlProtocol.Ops.FilterElementAdd or ControlProtocol.Ops.FilterElementDelete:
                    policy.ChangeElements(request.SetName ?? "", request.Elements ?? [], request.Op == ControlProtocol.Ops.FilterElementDelete);
                    log.Info($"filter: {who} {(request.Op == ControlProtocol.Ops.FilterElementDelete ? "deleted" : "added")} {request.Elements?.Count ?? 0} elements of set {request.SetName}");
                    break;
            }
            return null;
        }
        catch (Exception error) when (error is FormatException or ArgumentException or PcapFilterException)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, error.Message);
        }
        catch (IOException error)
        {
            throw new ControlException(ControlProtocol.Errors.IoError, error.Message);
        }
    }

    private Qos.QosStore QosStore => Qos ?? throw new ControlException(ControlProtocol.Errors.Unsupported, "This daemon has no QoS.");

    private void ChangeQos(PeerIdentity caller, ControlRequest request)
    {
        var qos = QosStore;
        string who = $"{caller.ProcessName} (pid {caller.Pid}, uid {caller.Uid})";
        try
        {
            switch (request.Op)
            {
                case ControlProtocol.Ops.QosAdd or ControlProtocol.Ops.QosChange:
                    var changed = qos.AddOrChange(request.Class ?? "", request.Rule ?? [], request.Op == ControlProtocol.Ops.QosChange);
                    log.Info($"qos: {who} {(request.Op == ControlProtocol.Ops.QosAdd ? "added" : "changed")} class {changed}");
                    break;
                case ControlProtocol.Ops.QosDelete:
                    qos.DeleteClass(request.Class ?? "");
                    log.Info($"qos: {who} deleted class {request.Class}");
                    break;
                case ControlProtocol.Ops.QosMatchAdd:
                    var match = qos.AddMatch(request.Class ?? "", request.Rule ?? []);
                    log.Info($"qos: {who} added match {match} to class {match.ClassName} (handle {match.Handle})");
                    break;
                case ControlProtocol.Ops.QosMatchDelete:
                    if (!qos.DeleteMatch(request.Handle ?? -1))
                    {
                        throw new ControlException(ControlProtocol.Errors.NotFound, $"There is no match with handle {request.Handle}: `norman qos show` lists them.");
                    }
                    break;
            }
        }
        catch (Exception error) when (error is FormatException or ArgumentException)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, error.Message);
        }
        catch (IOException error)
        {
            throw new ControlException(ControlProtocol.Errors.IoError, error.Message);
        }
    }

    private QosInfo DescribeQos() => new()
    {
        LineRateBits = QosStore.LineRateBits,
        Classes = QosStore.Show().Select(view => new QosClassInfo
        {
            Name = view.Class.Name,
            Spec = view.Class.ToString(),
            Band = view.Class.Band,
            Weight = view.Class.Weight,
            RateBits = view.Class.RateBits,
            CeilBits = view.Class.CeilBits,
            BurstBytes = view.Class.BurstBytes,
            Dscp = view.Class.Dscp,
            PoliceBits = view.Class.PoliceBits,
            Matches = view.Matches.Select(m => new QosMatchInfo { Handle = m.Handle, Match = m.ToString() }).ToList(),
            SentBitsPerSecond = Math.Round(view.BitsPerSecond),
            SentPacketsPerSecond = Math.Round(view.PacketsPerSecond),
            Packets = Volatile.Read(ref view.Counters.Packets),
            Bytes = Volatile.Read(ref view.Counters.Bytes),
            Drops = Volatile.Read(ref view.Counters.PolicedDrops),
            Backlog = Math.Max(0, Volatile.Read(ref view.Counters.Backlog)),
            Overlimits = Volatile.Read(ref view.Counters.Overlimits),
        }).ToList(),
    };

    private TraceInfo Trace(ControlRequest request)
    {
        try
        {
            var chain = PolicyStore.ParseChain(request.Chain ?? "");
            var (frame, packet) = PacketTrace.Build(chain, request.Rule ?? [], engine.Host.Address);
            // The owner, as the dataplane would find it: the socket bound to the packet's port on our side.
            ushort ourPort = chain == Chain.Ingress ? packet.DestinationPort : packet.SourcePort;
            var owner = sockets.Snapshot().FirstOrDefault(s => s.LocalPort == ourPort && s.Pipe.Protocol == packet.Protocol);
            string ownerText = owner is null ? "no socket" : $"app {owner.Owner.ProcessName} pid {owner.Owner.Pid} uid {owner.Owner.Uid}";
            var result = PacketTrace.Run(engine.Policy, chain, frame, packet, owner?.Pipe, ownerText);
            return new TraceInfo
            {
                Packet = result.Packet,
                Owner = result.Owner,
                Verdict = result.Verdict,
                Steps = result.Steps.Select(s => new TraceStep { Handle = s.Handle, Rule = s.Rule, Matched = s.Matched, Note = s.Note }).ToList(),
            };
        }
        catch (FormatException error)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, error.Message);
        }
    }

    /// <summary>The dataplane's counters, with the socket count, conntrack's and the verdict caches'.</summary>
    public Dictionary<string, long> Counters()
    {
        var counters = engine.Counters.Snapshot();
        counters["sockets"] = sockets.Count;
        counters["conntrack_flows"] = engine.Conntrack.Count;
        counters["conntrack_table_full"] = engine.Conntrack.TableFull;
        counters["verdict_cache_hits"] = engine.IngressVerdicts.Hits + engine.EgressVerdicts.Hits;
        counters["verdict_cache_misses"] = engine.IngressVerdicts.Misses + engine.EgressVerdicts.Misses;
        return counters;
    }

    /// <summary>Every counter, the sockets' as <paramref name="viewer"/> may see them (as `norman ss` shows them).</summary>
    public StatsInfo Stats(PeerIdentity viewer) => new()
    {
        Counters = Counters(),
        // One row per socket: the counters are the pipes'; a listener's thousands of connections are ss's to list.
        Sockets = sockets.Snapshot().Select(s => Describe(s, viewer, engine.Qos)).ToList(),
        Rules = DescribeFilter().Rules,
        Classes = Qos is null ? [] : DescribeQos().Classes,
    };

    private async Task<ConntrackInfo> ListConntrackAsync()
    {
        var list = new ListFlowsCommand();
        engine.Post(list);
        await list.Applied.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        return new ConntrackInfo
        {
            Active = engine.Policy.UsesConntrack,
            Count = list.Flows.Count,
            Max = engine.Conntrack.Capacity,
            TableFull = engine.Conntrack.TableFull,
            Flows = list.Flows.Select(flow => flow.Key.Protocol == IpProtocols.Icmp
                // An ICMP query's key holds its id and its request's type where ports are: id first, whichever side asked.
                ? flow.OriginLocal
                    ? Flow(flow, flow.Key.LocalAddress, flow.Key.LocalPort, flow.Key.RemoteAddress, flow.Key.RemotePort)
                    : Flow(flow, flow.Key.RemoteAddress, flow.Key.LocalPort, flow.Key.LocalAddress, flow.Key.RemotePort)
                : flow.OriginLocal
                    ? Flow(flow, flow.Key.LocalAddress, flow.Key.LocalPort, flow.Key.RemoteAddress, flow.Key.RemotePort)
                    : Flow(flow, flow.Key.RemoteAddress, flow.Key.RemotePort, flow.Key.LocalAddress, flow.Key.LocalPort)).ToList(),
        };

        static TrackedFlowInfo Flow(TrackedFlow flow, NetAddress source, ushort sourcePort, NetAddress destination, ushort destinationPort) => new()
        {
            Protocol = flow.Key.Protocol switch { IpProtocols.Tcp => "tcp", IpProtocols.Icmp => "icmp", _ => "udp" },
            State = flow.State,
            SecondsLeft = flow.SecondsLeft,
            Source = source.ToString(),
            SourcePort = sourcePort,
            Destination = destination.ToString(),
            DestinationPort = destinationPort,
            Replied = flow.Replied,
        };
    }

    private FilterInfo DescribeFilter()
    {
        var listing = policy.List();
        return new FilterInfo
        {
            IngressPolicy = listing.IngressPolicy.ToString().ToLowerInvariant(),
            EgressPolicy = listing.EgressPolicy.ToString().ToLowerInvariant(),
            Generation = listing.Generation,
            Rules = listing.Rules.Select(r => new RuleInfo
            {
                Handle = r.Rule.Handle,
                Chain = r.Rule.Chain.ToString().ToLowerInvariant(),
                Rule = r.Rule.ToString(),
                Packets = Volatile.Read(ref r.Counters.Packets),
                Bytes = Volatile.Read(ref r.Counters.Bytes),
            }).ToList(),
            Sets = policy.Sets().Select(s => new SetInfo { Name = s.Name, Type = s.KindName, Elements = s.Elements.Count }).ToList(),
        };
    }

    private async Task<NormanSocket> BindAsync(ControlSession session, ControlRequest request)
    {
        byte protocol = (request.Protocol ?? "udp").ToLowerInvariant() switch
        {
            "udp" => IpProtocols.Udp,
            // The TCP stack is the application's (the client library's); the daemon carries its segments.
            "tcp" => IpProtocols.Tcp,
            var other => throw new ControlException(ControlProtocol.Errors.Unsupported, $"Unknown protocol '{other}': use udp or tcp."),
        };
        var address = ParseV4Address(request.Address ?? "0.0.0.0", "bind to");
        int slotCount = request.SlotCount ?? defaultSlotCount;
        if (!PipeLayout.IsValidGeometry(slotCount, PipeLayout.DefaultSlotSize))
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"A pipe of {slotCount} slots is not allowed: use a power of two from {PipeLayout.MinSlotCount} to {PipeLayout.MaxSlotCount}.");
        }
        var identity = session.Identity;
        bool ordinary = !IsAdministrator(identity);
        if (!Descriptors.TryTake(NormanSocket.Descriptors, administrator: !ordinary))
        {
            throw new ControlException(ControlProtocol.Errors.TooManySockets, "Cannot open a socket: " + Descriptors.Refusal(identity.Uid, !ordinary));
        }
        NormanSocket socket;
        try
        {
            socket = sockets.Bind(identity, !ordinary, protocol, address, request.Port ?? 0,
                PipeLayout.SocketRegionBytes(slotCount, PipeLayout.DefaultSlotSize, tcp: protocol == IpProtocols.Tcp),
                (id, port) => new NormanSocket(id, identity, protocol, address.IsUnspecified ? NetAddress.FromV4(0) : address, port, slotCount,
                    PipeLayout.DefaultSlotSize, appNames.IdOf(identity.AppName), appNames.IdOf(AppNames.CgroupKey(identity.Cgroup)),
                    appNames.IdOf(AppNames.ExecutableKey(identity.Executable))));
        }
        catch
        {
            Descriptors.Return(NormanSocket.Descriptors, administrator: !ordinary);
            throw;
        }
        session.Own(socket);
        var add = new AddSocketCommand(socket.Pipe);
        engine.Post(add);
        await add.Applied;
        log.Info($"bind {IpProtocols.Name(protocol)} {socket.LocalAddress}:{socket.LocalPort} by {identity.ProcessName} (pid {identity.Pid}, uid {identity.Uid})");
        return socket;
    }

    private async Task ConnectAsync(ControlSession session, ControlRequest request)
    {
        var socket = OwnedSocket(session, request);
        var remote = ParseV4Address(request.RemoteAddress ?? throw new ControlException(ControlProtocol.Errors.InvalidArgument, "connect needs remoteAddress."), "connect to");
        int port = request.RemotePort ?? 0;
        if (port is <= 0 or > 65535 || remote.IsUnspecified)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"Cannot connect to {remote}:{port}: give a real address and a port from 1 to 65535.");
        }
        // As Linux does, a wildcard-bound socket takes the host's address as its source once connected.
        var local = socket.LocalAddress.IsUnspecified ? engine.Host.Address : socket.LocalAddress;
        var connect = new ConnectSocketCommand(socket.Pipe, local, remote, (ushort)port);
        engine.Post(connect);
        await connect.Applied;
        socket.RemoteAddress = remote;
        socket.RemotePort = (ushort)port;
    }

    /// <summary>Releases a socket: its port at once, its memory once the dataplane has stopped serving it.</summary>
    public async Task CloseAsync(ControlSession session, NormanSocket socket)
    {
        sockets.Remove(socket);
        session.Disown(socket);
        var remove = new RemoveSocketCommand(socket.Pipe);
        engine.Post(remove);
        await remove.Applied;
        socket.Dispose();
        Descriptors.Return(NormanSocket.Descriptors, IsAdministrator(socket.Owner));
        log.Info($"close {IpProtocols.Name(socket.Pipe.Protocol)} {socket.LocalAddress}:{socket.LocalPort} of {socket.Owner.ProcessName} (pid {socket.Owner.Pid})");
    }

    private NormanSocket OwnedSocket(ControlSession session, ControlRequest request)
    {
        long id = request.SocketId ?? throw new ControlException(ControlProtocol.Errors.InvalidArgument, "This operation needs socketId.");
        return session.Find(id) ?? throw new ControlException(ControlProtocol.Errors.NoSuchSocket,
            $"Socket {id} is not one of this connection's sockets.");
    }

    /// <summary>An IPv4 address for a socket; IPv6 ones are refused as Linux refuses a family it does not carry.</summary>
    private static NetAddress ParseV4Address(string text, string what)
    {
        NetAddress address;
        try
        {
            address = NetAddress.Parse(text);
        }
        catch (FormatException error)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, error.Message);
        }
        return address.IsV4 ? address : throw new ControlException(ControlProtocol.Errors.AddressFamilyNotSupported,
            $"Cannot {what} {text}: Norman carries IPv4 only for applications so far. Use an IPv4 address, or 0.0.0.0 for any.");
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
    private static IEnumerable<SocketInfo> DescribeWithConnections(NormanSocket socket, PeerIdentity viewer, Qos.QosSnapshot qos, NetAddress host)
    {
        var connections = socket.Connections();
        if (socket.RemotePort != 0 && connections.Count == 1)
        {
            yield return Describe(socket, viewer, qos, connections[0], localAddress: host); // a client socket: its one connection is the socket
            yield break;
        }
        yield return Describe(socket, viewer, qos);
        foreach (var connection in connections)
        {
            yield return Describe(socket, viewer, qos, connection, socketRow: false, localAddress: host);
        }
    }

    private static string StateName(byte state) => state < TcpStateNames.Length ? TcpStateNames[state] : "UNKNOWN";

    /// <summary>
    /// What ss shows. As on Linux, process details of other users' sockets are shown only to root. With a TCP
    /// connection its stack reports, the row shows the connection's state, remote end and queues; a listener's
    /// connection rows (not the socket's row) carry no traffic counters, which are the socket's alone.
    /// </summary>
    private static SocketInfo Describe(NormanSocket socket, PeerIdentity viewer, Qos.QosSnapshot qos,
        ConnectionTable.Record? connection = null, bool socketRow = true, NetAddress? localAddress = null)
    {
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
            LocalAddress = (socket.LocalAddress.IsUnspecified && localAddress is { } local ? local : socket.LocalAddress).ToString(),
            LocalPort = socket.LocalPort,
            RemoteAddress = connection is { } r ? NetAddress.FromV4(r.RemoteAddress).ToString() : socket.RemotePort != 0 ? socket.RemoteAddress.ToString() : "*",
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
