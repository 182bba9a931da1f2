using Norman.Daemon.Control;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy.Bpf;

namespace Norman.Daemon.Policy;

/// <summary>
/// The control plane's filtering policy: the rules of both chains with their handles, and each chain's policy.
/// Every change is compiled off the dataplane thread into a new <see cref="PolicySnapshot"/> (a bad pcap expression
/// fails here, before anything changes), published in one swap, and written to the policy file (temp, then rename),
/// from which the daemon restores it when it starts.
/// </summary>
public sealed class PolicyStore
{
    private readonly object _gate = new();
    private readonly Engine _engine;
    private readonly AppNames _names;
    private readonly string? _file;
    private readonly Qos.QosStore? _qos;
    private List<FilterRule> _rules = new();
    private Dictionary<string, NamedSet> _sets = new();
    private readonly Dictionary<long, RuleCounters> _counters = new();
    private FilterAction _ingressPolicy = FilterAction.Accept;
    private FilterAction _egressPolicy = FilterAction.Accept;
    private long _nextHandle = 1;
    private long _generation;

    public PacketLog Log { get; } = new();

    /// <summary>Restores the policy file, if there is one; QoS classes, if given, are kept in it too (`qos …` lines).</summary>
    public PolicyStore(Engine engine, AppNames names, string? file, Qos.QosStore? qos = null)
    {
        _engine = engine;
        _names = names;
        _file = file;
        _qos = qos;
        if (qos is not null)
        {
            qos.Changed = PersistNow;
        }
        if (file is not null && File.Exists(file))
        {
            Restore(File.ReadAllLines(file), file, allowEmpty: true);
        }
    }

    public sealed record Listing(FilterAction IngressPolicy, FilterAction EgressPolicy, long Generation, IReadOnlyList<(FilterRule Rule, RuleCounters Counters)> Rules);

    /// <summary>The log lines of `log` rules since the last call, for the daemon's log.</summary>
    public List<string> DrainLog()
    {
        lock (_gate)
        {
            var prefixes = _rules.Where(r => r.LogPrefix is not null).ToDictionary(r => r.Handle, r => r.LogPrefix! + " ");
            return Log.Drain(_names.NameOf, handle => prefixes.GetValueOrDefault(handle, ""));
        }
    }

    public FilterRule Add(Chain chain, IReadOnlyList<string> words, bool atTop = false)
    {
        lock (_gate)
        {
            var rule = FilterRuleParser.Parse(chain, words) with { Handle = _nextHandle };
            var rules = new List<FilterRule>(_rules);
            if (atTop)
            {
                int first = rules.FindIndex(r => r.Chain == chain);
                rules.Insert(first < 0 ? rules.Count : first, rule);
            }
            else
            {
                rules.Add(rule);
            }
            Commit(rules, _ingressPolicy, _egressPolicy);
            _nextHandle++;
            return rule;
        }
    }

    /// <summary>Creates a set (or adds to it, if it exists with the same type).</summary>
    public void AddSet(string name, string kind, IReadOnlyList<string> elements)
    {
        lock (_gate)
        {
            var sets = new Dictionary<string, NamedSet>(_sets);
            var set = sets.TryGetValue(name, out var existing) ? existing.Copy() : new NamedSet(name, NamedSet.ParseKind(kind));
            if (set.KindName != kind)
            {
                throw new FormatException($"Set '{name}' exists and holds {set.KindName}.");
            }
            sets[name] = set;
            set.Add(elements);
            Commit(_rules, _ingressPolicy, _egressPolicy, sets);
        }
    }

    public void DeleteSet(string name)
    {
        lock (_gate)
        {
            if (!_sets.ContainsKey(name))
            {
                throw new FormatException($"There is no set '{name}'.");
            }
            var user = _rules.FirstOrDefault(r => new[] { r.Source?.SetName, r.Destination?.SetName, r.SourcePorts?.SetName, r.DestinationPorts?.SetName }.Contains(name));
            if (user is not null)
            {
                throw new FormatException($"Set '{name}' is used by rule {user.Handle} ({user}): delete the rule first.");
            }
            var sets = new Dictionary<string, NamedSet>(_sets);
            sets.Remove(name);
            Commit(_rules, _ingressPolicy, _egressPolicy, sets);
        }
    }

    /// <summary>Adds (or, with <paramref name="remove"/>, removes) elements of an existing set, in one swap.</summary>
    public void ChangeElements(string name, IReadOnlyList<string> elements, bool remove)
    {
        lock (_gate)
        {
            var set = (_sets.GetValueOrDefault(name) ?? throw new FormatException($"There is no set '{name}'.")).Copy();
            if (remove)
            {
                set.Remove(elements);
            }
            else
            {
                set.Add(elements);
            }
            Commit(_rules, _ingressPolicy, _egressPolicy, new Dictionary<string, NamedSet>(_sets) { [name] = set });
        }
    }

    public IReadOnlyList<NamedSet> Sets()
    {
        lock (_gate)
        {
            return _sets.Values.OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
        }
    }


    public bool Delete(long handle)
    {
        lock (_gate)
        {
            var rules = _rules.Where(r => r.Handle != handle).ToList();
            if (rules.Count == _rules.Count)
            {
                return false;
            }
            Commit(rules, _ingressPolicy, _egressPolicy);
            return true;
        }
    }

    /// <summary>Removes every rule of one chain, or of both; chain policies stay.</summary>
    public void Flush(Chain? chain)
    {
        lock (_gate)
        {
            Commit(_rules.Where(r => chain is not null && r.Chain != chain).ToList(), _ingressPolicy, _egressPolicy);
        }
    }

    public void SetPolicy(Chain chain, FilterAction action)
    {
        if (action is not (FilterAction.Accept or FilterAction.Drop))
        {
            throw new FormatException("A chain's policy is accept or drop.");
        }
        lock (_gate)
        {
            Commit(_rules, chain == Chain.Ingress ? action : _ingressPolicy, chain == Chain.Egress ? action : _egressPolicy);
        }
    }

    public Listing List()
    {
        lock (_gate)
        {
            return new Listing(_ingressPolicy, _egressPolicy, _generation, _rules.Select(r => (r, _counters[r.Handle])).ToList());
        }
    }

    /// <summary>The policy as lines of the file format: what `norman filter save` prints and restore reads.</summary>
    public IReadOnlyList<string> Save()
    {
        lock (_gate)
        {
            return PolicyFile.Write(_rules, _ingressPolicy, _egressPolicy, _sets, _qos?.Lines() ?? []);
        }
    }

    /// <summary>
    /// Applies a policy file, all or nothing, as <c>nft -f</c> does: its lines are added to the policy in force, and a
    /// <c>flush ruleset</c> line (which <see cref="Save"/> writes first) empties it — rules, sets and the policies back to
    /// accept — before the lines after it. A file that says nothing of a chain's policy leaves it as it is: a drop policy
    /// is never weakened by omission. A file with no rule, set, policy or flush at all is refused unless
    /// <paramref name="allowEmpty"/> (then it changes nothing). With <paramref name="dryRun"/> everything is parsed and
    /// compiled exactly as for the real thing (as <c>nft -c -f</c>) and nothing changes. Returns the policy's lines after.
    /// </summary>
    public IReadOnlyList<string> Restore(IReadOnlyList<string> lines, string origin, bool dryRun = false, bool allowEmpty = false)
    {
        lock (_gate)
        {
            var draft = new PolicyFile.Draft(new List<FilterRule>(_rules), _sets.ToDictionary(s => s.Key, s => s.Value.Copy()),
                _ingressPolicy, _egressPolicy, _nextHandle);
            PolicyFile.Read(lines, origin, draft, readsQos: _qos is not null);
            if (!draft.SaidAnything && !allowEmpty)
            {
                throw new FormatException($"{origin}: there is nothing in it, and an empty restore changes nothing: to remove every rule and set, " +
                    "write 'flush ruleset'; to accept an empty file as it is, pass --allow-empty.");
            }
            try
            {
                // QoS first: it checks everything before it changes anything, and so does the filter's commit.
                // A file without `qos` lines (a filter-only one) leaves the classes as they are.
                var qos = draft.QosLines.Count > 0 ? _qos!.Restore(draft.QosLines, dryRun) : _qos?.Lines() ?? [];
                Commit(draft.Rules, draft.Ingress, draft.Egress, draft.Sets, dryRun);
                if (!dryRun)
                {
                    _nextHandle = draft.NextHandle;
                }
                return PolicyFile.Write(draft.Rules, draft.Ingress, draft.Egress, draft.Sets, qos);
            }
            catch (Exception error) when (error is PcapFilterException or FormatException)
            {
                throw new FormatException($"{origin}: {error.Message}", error);
            }
        }
    }

    public static Chain ParseChain(string name) => name.ToLowerInvariant() switch
    {
        "ingress" or "input" => Chain.Ingress,
        "egress" or "output" => Chain.Egress,
        _ => throw new FormatException($"'{name}' is not a chain: use ingress or egress."),
    };

    private void Commit(List<FilterRule> rules, FilterAction ingress, FilterAction egress) => Commit(rules, ingress, egress, _sets);

    /// <summary>Compiles the policy (a bad expression or set throws here, before anything changes) and, unless <paramref name="dryRun"/>, puts it in force and on disk.</summary>
    private void Commit(List<FilterRule> rules, FilterAction ingress, FilterAction egress, Dictionary<string, NamedSet> sets, bool dryRun = false)
    {
        var frozen = new Dictionary<string, object>();
        NamedSet Named(string name, SetKind kind)
        {
            if (!sets.TryGetValue(name, out var set))
            {
                throw new FormatException($"There is no set '{name}': create it with `norman filter set add {name} {NamedSet.KindNameOf(kind)}`.");
            }
            return set.Kind == kind ? set : throw new FormatException($"Set '{name}' holds {set.KindName}, which this match cannot use.");
        }
        IntervalSet SetOf(string name, SetKind kind)
        {
            var set = Named(name, kind);
            if (!frozen.TryGetValue(name, out var elements))
            {
                frozen[name] = elements = set.Freeze();
            }
            return (IntervalSet)elements;
        }
        Prefix6Set Set6Of(string name)
        {
            var set = Named(name, SetKind.Addresses6);
            if (!frozen.TryGetValue(name, out var elements))
            {
                frozen[name] = elements = set.Freeze6();
            }
            return (Prefix6Set)elements;
        }
        CompiledRule Compile(FilterRule rule)
        {
            if (!_counters.TryGetValue(rule.Handle, out var counters))
            {
                counters = new RuleCounters();
            }
            return new CompiledRule(rule, _names, counters, SetOf, Set6Of);
        }
        // Compile everything first: a bad expression throws here, and nothing has changed yet.
        var ingressRules = rules.Where(r => r.Chain == Chain.Ingress).Select(Compile).ToArray();
        var egressRules = rules.Where(r => r.Chain == Chain.Egress).Select(Compile).ToArray();
        var snapshot = new PolicySnapshot(_generation + 1, ingress, egress, ingressRules, egressRules, Log);
        if (dryRun)
        {
            return;
        }
        foreach (var compiled in ingressRules.Concat(egressRules))
        {
            _counters[compiled.Rule.Handle] = compiled.Counters;
        }
        var kept = rules.Select(r => r.Handle).ToHashSet();
        foreach (var gone in _counters.Keys.Where(h => !kept.Contains(h)).ToList())
        {
            _counters.Remove(gone);
        }
        _rules = rules;
        _sets = sets;
        _ingressPolicy = ingress;
        _egressPolicy = egress;
        _generation = snapshot.Generation;
        // In force first, then on disk: the dataplane does not wait for the file (a 10,000-rule file takes tens of ms).
        _engine.Publish(snapshot);
        Persist();
    }

    /// <summary>Writes the policy file as it stands (the QoS store calls this after each of its changes).</summary>
    public void PersistNow()
    {
        lock (_gate)
        {
            Persist();
        }
    }

    /// <summary>Write to a temporary file, then rename over the old one: a crash leaves the old policy or the new, never half.</summary>
    private void Persist()
    {
        if (_file is null)
        {
            return;
        }
        try
        {
            string directory = Path.GetDirectoryName(Path.GetFullPath(_file))!;
            Directory.CreateDirectory(directory);
            string temporary = Path.Combine(directory, $".{Path.GetFileName(_file)}.{Environment.ProcessId}.tmp");
            File.WriteAllLines(temporary, PolicyFile.Write(_rules, _ingressPolicy, _egressPolicy, _sets, _qos?.Lines() ?? []));
            File.Move(temporary, _file, overwrite: true);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"The policy is in force but could not be saved to {_file}: {error.Message} " +
                "Fix the file's directory or permissions; the next change saves it again.", error);
        }
    }
}
