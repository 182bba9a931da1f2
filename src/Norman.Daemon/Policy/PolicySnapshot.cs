using System.Collections.Frozen;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// The whole filtering policy at one moment, compiled and immutable. The control plane builds a new one off the
/// dataplane thread and publishes it with one reference store; the dataplane picks it up between batches, so a
/// packet sees one ruleset or the other, never half of each.
/// </summary>
public sealed class PolicySnapshot
{
    public static readonly PolicySnapshot Empty = new(0, FilterAction.Accept, FilterAction.Accept, [], [], new PacketLog());

    public PolicySnapshot(long generation, FilterAction ingressPolicy, FilterAction egressPolicy, CompiledRule[] ingress, CompiledRule[] egress, PacketLog log)
    {
        Log = log;
        Generation = generation;
        IngressPolicy = ingressPolicy;
        EgressPolicy = egressPolicy;
        Ingress = ingress;
        Egress = egress;
        UsesConntrack = ingress.Any(r => r.UsesConntrack) || egress.Any(r => r.UsesConntrack);
        IngressCacheable = ingress.All(r => r.DependsOnFlowAndState);
        EgressCacheable = egress.All(r => r.DependsOnFlowAndState);
        _byHandle = ingress.Concat(egress).ToFrozenDictionary(r => r.Rule.Handle, r => r.Rule);
    }

    private readonly FrozenDictionary<long, FilterRule> _byHandle;

    /// <summary>The rule with this handle (what a verdict names), or null.</summary>
    public FilterRule? Find(long handle) => _byHandle.GetValueOrDefault(handle);

    /// <summary>True when every rule of the chain decides by flow, owner and conntrack state alone, so its verdicts can be cached per flow and state.</summary>
    public bool IsCacheable(Chain chain) => chain == Chain.Ingress ? IngressCacheable : EgressCacheable;

    private bool IngressCacheable { get; }
    private bool EgressCacheable { get; }

    /// <summary>True when a rule matches on ct state: only then does the dataplane track connections (as nf_conntrack loads when used).</summary>
    public bool UsesConntrack { get; }

    public long Generation { get; }
    public PacketLog Log { get; }
    public FilterAction IngressPolicy { get; }
    public FilterAction EgressPolicy { get; }
    public CompiledRule[] Ingress { get; }
    public CompiledRule[] Egress { get; }

    /// <summary>True when a chain accepts everything: no rules and an accepting policy, so the stage can skip it.</summary>
    public bool IsOpen(Chain chain) => chain == Chain.Ingress
        ? Ingress.Length == 0 && IngressPolicy == FilterAction.Accept
        : Egress.Length == 0 && EgressPolicy == FilterAction.Accept;

    public CompiledRule[] Rules(Chain chain) => chain == Chain.Ingress ? Ingress : Egress;

    /// <summary>First match wins; count and log rules do their work and go on; no match means the chain's policy.</summary>
    public FilterAction Evaluate(Chain chain, ReadOnlySpan<byte> frame, in ParsedPacket packet, PipeSocket? socket, ConnectionState state)
    {
        var none = default(NoObserver);
        return Evaluate(chain, frame, packet, socket, state, ref none);
    }

    /// <summary>
    /// The one evaluation loop, telling <paramref name="observer"/> each rule that matched and the one that decided.
    /// A struct observer, so that the JIT compiles one specialised loop per kind of watcher and none costs a call.
    /// </summary>
    public FilterAction Evaluate<TObserver>(Chain chain, ReadOnlySpan<byte> frame, in ParsedPacket packet, PipeSocket? socket,
        ConnectionState state, ref TObserver observer)
        where TObserver : IRuleObserver, allows ref struct
    {
        var rules = Rules(chain);
        for (int r = 0; r < rules.Length; r++)
        {
            var rule = rules[r];
            if (!rule.Matches(frame, packet, socket, state))
            {
                continue;
            }
            observer.Matched(r, rule.Rule.Handle);
            rule.Counters.Packets++;
            rule.Counters.Bytes += packet.IpTotalLength; // from the network header, as nft counts
            if (rule.Action == FilterAction.Log)
            {
                if (rule.MayLog(System.Diagnostics.Stopwatch.GetTimestamp()))
                {
                    Log.Write(rule.Rule.Handle, chain, packet, socket);
                }
                continue;
            }
            if (rule.Action != FilterAction.Count)
            {
                observer.Decided(rule.Rule.Handle);
                return rule.Action;
            }
        }
        return chain == Chain.Ingress ? IngressPolicy : EgressPolicy;
    }
}
