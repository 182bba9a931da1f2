using System.Globalization;

namespace Norman.Daemon.Policy;

/// <summary>
/// The policy file's format, read and written: what `norman filter save` prints, `norman filter restore` and the daemon's
/// start read, one statement a line as <c>nft -f</c> reads its files — <c>flush ruleset</c>, <c>policy CHAIN
/// accept|drop</c>, <c>set NAME TYPE</c>, <c>element NAME …</c>, <c>add CHAIN RULE</c>, and <c>qos …</c> for the QoS
/// classes kept beside the rules. Every rule prints in words the parser reads back equal (names quoted as need be).
/// Nothing here is in force: <see cref="PolicyStore"/> compiles what was read and commits it, all or nothing.
/// </summary>
public static class PolicyFile
{
    /// <summary>A policy being read: the one in force, changed line by line (a flush empties it).</summary>
    public sealed class Draft(List<FilterRule> rules, Dictionary<string, NamedSet> sets, FilterAction ingress, FilterAction egress, long nextHandle)
    {
        public List<FilterRule> Rules { get; } = rules;
        public Dictionary<string, NamedSet> Sets { get; } = sets;
        public FilterAction Ingress { get; set; } = ingress;
        public FilterAction Egress { get; set; } = egress;
        public long NextHandle { get; set; } = nextHandle;
        /// <summary>The <c>qos</c> lines, each with where it came from (FILE:LINE), for the QoS store to apply.</summary>
        public List<(List<string> Words, string Origin)> QosLines { get; } = new();
        /// <summary>Whether any line said anything (a rule, a set, a policy or a flush): an empty file is not a flush.</summary>
        public bool SaidAnything { get; private set; }

        internal void Said() => SaidAnything = true;
    }

    /// <summary>
    /// Reads <paramref name="lines"/> into <paramref name="draft"/>; a line that does not parse throws a
    /// <see cref="FormatException"/> naming <paramref name="origin"/> and the line. <c>qos</c> lines are collected when
    /// <paramref name="readsQos"/>, and refused otherwise.
    /// </summary>
    public static void Read(IReadOnlyList<string> lines, string origin, Draft draft, bool readsQos)
    {
        for (int n = 0; n < lines.Count; n++)
        {
            try
            {
                ReadLine(FilterRuleParser.Words(lines[n]), $"{origin}:{n + 1}", draft, readsQos);
            }
            catch (Exception error) when (error is FormatException or ArgumentException)
            {
                throw new FormatException($"{origin}:{n + 1}: {error.Message}", error);
            }
        }
    }

    private static void ReadLine(List<string> words, string where, Draft draft, bool readsQos)
    {
        if (words.Count == 0)
        {
            return;
        }
        draft.Said();
        if (words is ["flush", "ruleset"])
        {
            draft.Rules.Clear();
            draft.Sets.Clear();
            (draft.Ingress, draft.Egress) = (FilterAction.Accept, FilterAction.Accept);
        }
        else if (words is ["qos", .. var qosWords] && readsQos)
        {
            draft.QosLines.Add((qosWords, where));
        }
        else if (words is ["policy", var chainName, var action])
        {
            var value = action switch
            {
                "accept" => FilterAction.Accept,
                "drop" => FilterAction.Drop,
                _ => throw new FormatException($"'{action}': a chain's policy is accept or drop"),
            };
            if (PolicyStore.ParseChain(chainName) == Chain.Ingress)
            {
                draft.Ingress = value;
            }
            else
            {
                draft.Egress = value;
            }
        }
        else if (words is ["set", var setName, var kind])
        {
            var type = NamedSet.ParseKind(kind);
            if (!draft.Sets.TryGetValue(setName, out var existing))
            {
                draft.Sets[setName] = new NamedSet(setName, type);
            }
            else if (existing.Kind != type)
            {
                throw new FormatException($"set '{setName}' exists and holds {existing.KindName}");
            }
        }
        else if (words is ["element", var elementSet, ..])
        {
            var set = draft.Sets.GetValueOrDefault(elementSet) ?? throw new FormatException($"element for set '{elementSet}' before 'set {elementSet} TYPE'");
            set.Add(words.Skip(2).ToList());
        }
        else if (words is ["add", var chainName2, ..])
        {
            draft.Rules.Add(FilterRuleParser.Parse(PolicyStore.ParseChain(chainName2), words.Skip(2).ToList()) with { Handle = draft.NextHandle++ });
        }
        else
        {
            throw new FormatException("expected 'flush ruleset', 'policy CHAIN accept|drop', 'set NAME TYPE', 'element NAME …', " +
                "'add CHAIN RULE' or 'qos …'");
        }
    }

    /// <summary>
    /// The whole policy as lines: a flush (the file says all there is), chain policies, sets, rules, and the QoS classes
    /// kept with them.
    /// </summary>
    public static List<string> Write(List<FilterRule> rules, FilterAction ingress, FilterAction egress, Dictionary<string, NamedSet> sets,
        IEnumerable<string> qos)
    {
        var lines = new List<string>
        {
            "# Norman filter policy: restored when normand starts; `norman filter save` prints it.",
            "flush ruleset",
            $"policy ingress {ingress.ToString().ToLowerInvariant()}",
            $"policy egress {egress.ToString().ToLowerInvariant()}",
        };
        foreach (var set in sets.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            lines.Add($"set {set.Name} {set.KindName}");
            foreach (var chunk in set.FormatElements().Chunk(64))
            {
                lines.Add($"element {set.Name} {string.Join(' ', chunk)}");
            }
        }
        lines.AddRange(rules.Select(r => string.Create(CultureInfo.InvariantCulture, $"add {r.Chain.ToString().ToLowerInvariant()} {r}")));
        lines.AddRange(qos);
        return lines;
    }
}
