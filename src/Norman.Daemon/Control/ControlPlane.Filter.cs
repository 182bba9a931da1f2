using Norman.Core.Protocol;
using Norman.Daemon.Policy;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Control;

/// <summary>The filter family: the policy listed, saved, changed and restored; packets traced through it.</summary>
public sealed partial class ControlPlane
{
    private Task<int[]> OnFilterList(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Filter = DescribeFilter();
        return NoDescriptors;
    }

    private Task<int[]> OnFilterSave(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Filter = new FilterInfo { Lines = policy.Save().ToList() };
        return NoDescriptors;
    }

    /// <summary>Every change of the policy (rules, chains' policies, sets, a restore), off the control loop: a rule's pcap expression can take libpcap a second or more (see PcapFilter).</summary>
    private async Task<int[]> OnFilterChange(ControlSession session, ControlRequest request, ControlResponse response)
    {
        var wouldBe = await Task.Factory.StartNew(() => ChangeFilter(session.Identity, request), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        response.Filter = DescribeFilter();
        response.Filter.Lines = wouldBe?.ToList();
        response.Notes = request.Op == ControlProtocol.Ops.FilterAdd ? AppNameNotes(request.Rule) : null;
        return [];
    }

    private Task<int[]> OnFilterTrace(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Trace = Trace(request);
        return NoDescriptors;
    }

    private async Task<int[]> OnFilterTraceStart(ControlSession session, ControlRequest request, ControlResponse response)
    {
        engine.Trace = await CompileAsync(session.Identity, request.Expression ?? "ip or ip6",
            expression => new TraceTap(expression, Math.Clamp(request.Count ?? 10, 1, 100_000)));
        response.Trace = new TraceInfo { Remaining = engine.Trace.Remaining, Events = [] };
        return [];
    }

    private Task<int[]> OnFilterTracePoll(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Trace = PollTrace();
        return NoDescriptors;
    }

    private Task<int[]> OnFilterTraceStop(ControlSession session, ControlRequest request, ControlResponse response)
    {
        engine.Trace = null;
        return NoDescriptors;
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
            Sets = policy.Sets().Select(s => new SetInfo { Name = s.Name, Type = s.KindName, Elements = s.Count }).ToList(),
        };
    }

    private TraceInfo Trace(ControlRequest request)
    {
        try
        {
            var chain = PolicyStore.ParseChain(request.Chain ?? "");
            var (frame, packet) = PacketTrace.Build(chain, request.Rule ?? [], engine.Host);
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
}
