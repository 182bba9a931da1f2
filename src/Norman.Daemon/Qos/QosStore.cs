using System.Diagnostics;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Qos;

/// <summary>
/// The control plane's QoS policy: the classes (a default one always there, for what no match chooses) and the
/// matches that put sockets into them. Each change is checked and compiled off the dataplane thread, published in one
/// swap, and handed to <see cref="Changed"/> so that the policy file keeps it. A timer samples each class's counters
/// once a second, so that show reports the rate of the last second, as tc does.
/// </summary>
public sealed class QosStore : IDisposable
{
    private readonly object _gate = new();
    private readonly Engine _engine;
    private readonly AppNames _names;
    private readonly Dictionary<string, ClassCounters> _counters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Bytes, long Packets, double Bps, double Pps)> _rates = new(StringComparer.Ordinal);
    private readonly Timer _sampler;
    private List<TrafficClass> _classes = [new TrafficClass()];
    private List<ClassMatch> _matches = [];
    private long _nextHandle = 1;
    private long _generation;
    private long _lastSample = Stopwatch.GetTimestamp();

    public QosStore(Engine engine, AppNames names)
    {
        _engine = engine;
        _names = names;
        Commit(_classes, _matches, persist: false);
        _sampler = new Timer(_ => Sample(), null, 1000, 1000);
    }

    /// <summary>Called (under the store's lock) after every change, to persist the policy.</summary>
    public Action? Changed { get; set; }

    public sealed record ClassView(TrafficClass Class, ClassCounters Counters, double BitsPerSecond, double PacketsPerSecond, IReadOnlyList<ClassMatch> Matches);

    /// <summary>The port's line rate: the classes' rates may not add up to more.</summary>
    public long LineRateBits { get; init; }

    /// <summary>Adds a class; with <paramref name="change"/>, changes an existing one (settings not named stay).</summary>
    public TrafficClass AddOrChange(string name, IReadOnlyList<string> words, bool change)
    {
        lock (_gate)
        {
            QosParser.ValidName(name);
            var existing = _classes.FirstOrDefault(c => c.Name == name);
            if (change && existing is null)
            {
                throw new FormatException($"There is no class '{name}': `norman qos show` lists them; `norman qos add {name} …` creates it.");
            }
            if (!change && existing is not null)
            {
                throw new FormatException($"Class '{name}' exists: change it with `norman qos change {name} …`.");
            }
            var (parsed, matchWords) = QosParser.ParseClass(existing ?? new TrafficClass { Name = name }, words);
            var classes = _classes.Select(c => c.Name == name ? parsed : c).ToList();
            if (existing is null)
            {
                classes.Add(parsed);
            }
            var matches = _matches;
            if (matchWords is not null)
            {
                matches = [.. _matches, new ClassMatch(_nextHandle, name, QosParser.ParseMatch(matchWords))];
            }
            Commit(classes, matches);
            if (matchWords is not null)
            {
                _nextHandle++;
            }
            return parsed;
        }
    }

    public void DeleteClass(string name)
    {
        lock (_gate)
        {
            if (name == TrafficClass.DefaultName)
            {
                throw new FormatException("The default class takes what no match chooses and cannot be deleted; change it instead.");
            }
            if (_classes.All(c => c.Name != name))
            {
                throw new FormatException($"There is no class '{name}': `norman qos show` lists them.");
            }
            // Its matches go with it, as tc's filters go with a deleted class.
            Commit(_classes.Where(c => c.Name != name).ToList(), _matches.Where(m => m.ClassName != name).ToList());
        }
    }

    public ClassMatch AddMatch(string className, IReadOnlyList<string> words)
    {
        lock (_gate)
        {
            if (_classes.All(c => c.Name != className))
            {
                throw new FormatException($"There is no class '{className}': create it first with `norman qos add {className} …`.");
            }
            var match = new ClassMatch(_nextHandle, className, QosParser.ParseMatch(words));
            Commit(_classes, [.. _matches, match]);
            _nextHandle++;
            return match;
        }
    }

    public bool DeleteMatch(long handle)
    {
        lock (_gate)
        {
            var matches = _matches.Where(m => m.Handle != handle).ToList();
            if (matches.Count == _matches.Count)
            {
                return false;
            }
            Commit(_classes, matches);
            return true;
        }
    }

    /// <summary>Every class with its counters, last-second rates and matches, default first, then by band and name.</summary>
    public IReadOnlyList<ClassView> Show()
    {
        lock (_gate)
        {
            return _classes.OrderBy(c => c.Name != TrafficClass.DefaultName).ThenBy(c => c.Band).ThenBy(c => c.Name, StringComparer.Ordinal)
                .Select(c => new ClassView(c, _counters[c.Name], _rates.GetValueOrDefault(c.Name).Bps, _rates.GetValueOrDefault(c.Name).Pps,
                    _matches.Where(m => m.ClassName == c.Name).ToList()))
                .ToList();
        }
    }

    /// <summary>
    /// The classes and matches as policy-file lines (`qos class …`, `qos match …`). Takes no lock (both lists are
    /// replaced, never changed), so the filter store may call it while it holds its own.
    /// </summary>
    public IReadOnlyList<string> Lines()
    {
        return Format(Volatile.Read(ref _classes), Volatile.Read(ref _matches));
    }

    private static List<string> Format(IEnumerable<TrafficClass> classes, IEnumerable<ClassMatch> matches) =>
        classes.Select(c => $"qos class {c}").Concat(matches.Select(m => $"qos match {m.ClassName} {m}")).ToList();

    /// <summary>
    /// Replaces every class and match with those of policy-file lines (each without its leading "qos"); with
    /// <paramref name="dryRun"/>, checks them exactly so and changes nothing. Returns the lines the classes would save as.
    /// </summary>
    public IReadOnlyList<string> Restore(IReadOnlyList<(List<string> Words, string Where)> lines, bool dryRun = false)
    {
        lock (_gate)
        {
            var classes = new List<TrafficClass> { new() };
            var matches = new List<ClassMatch>();
            long handle = _nextHandle;
            foreach (var (words, where) in lines)
            {
                try
                {
                    if (words is ["class", var name, .. var settings])
                    {
                        var (parsed, match) = QosParser.ParseClass(new TrafficClass { Name = QosParser.ValidName(name) }, settings);
                        classes.RemoveAll(c => c.Name == name);
                        classes.Add(parsed);
                        if (match is not null)
                        {
                            matches.Add(new ClassMatch(handle++, name, QosParser.ParseMatch(match)));
                        }
                    }
                    else if (words is ["match", var className, .. var rule])
                    {
                        if (classes.All(c => c.Name != className))
                        {
                            throw new FormatException($"a match for class '{className}' before 'qos class {className} …'");
                        }
                        matches.Add(new ClassMatch(handle++, className, QosParser.ParseMatch(rule)));
                    }
                    else
                    {
                        throw new FormatException("expected 'qos class NAME SETTINGS' or 'qos match CLASS MATCH'");
                    }
                }
                catch (FormatException error)
                {
                    throw new FormatException($"{where}: {error.Message}", error);
                }
            }
            if (dryRun)
            {
                Check(classes, matches);
            }
            else
            {
                Commit(classes, matches, persist: false);
                _nextHandle = handle;
            }
            return Format(classes, matches);
        }
    }

    /// <summary>What a commit checks before it changes anything: the guarantees fit the line, every match compiles.</summary>
    private (ClassState[] States, (CompiledRule, int)[] Matches) Check(List<TrafficClass> classes, List<ClassMatch> matches)
    {
        long guaranteed = classes.Sum(c => c.RateBits);
        if (LineRateBits > 0 && guaranteed > LineRateBits)
        {
            throw new FormatException($"The classes' rates add up to {TrafficClass.FormatRate(guaranteed)}, more than the line rate " +
                $"({TrafficClass.FormatRate(LineRateBits)}): no scheduler can guarantee them all. Lower a rate, or raise --line-rate.");
        }
        var states = classes.Select((c, i) => new ClassState(c, i, _counters.GetValueOrDefault(c.Name) ?? new ClassCounters())).ToArray();
        var compiled = matches.Select(m => (new CompiledRule(m.Rule, _names, new RuleCounters()), classes.FindIndex(c => c.Name == m.ClassName))).ToArray();
        return (states, compiled);
    }

    private void Commit(List<TrafficClass> classes, List<ClassMatch> matches, bool persist = true)
    {
        foreach (var @class in classes)
        {
            if (!_counters.ContainsKey(@class.Name))
            {
                _counters[@class.Name] = new ClassCounters();
            }
        }
        var (states, compiled) = Check(classes, matches);
        var snapshot = new QosSnapshot(_generation + 1, states, compiled);
        foreach (var gone in _counters.Keys.Where(n => classes.All(c => c.Name != n)).ToList())
        {
            _counters.Remove(gone);
            _rates.Remove(gone);
        }
        _classes = classes;
        _matches = matches;
        _generation = snapshot.Generation;
        _engine.Publish(snapshot);
        if (persist)
        {
            Changed?.Invoke();
        }
    }

    private void Sample()
    {
        lock (_gate)
        {
            long now = Stopwatch.GetTimestamp();
            double seconds = (double)(now - _lastSample) / Stopwatch.Frequency;
            _lastSample = now;
            foreach (var (name, counters) in _counters)
            {
                long bytes = Volatile.Read(ref counters.Bytes);
                long packets = Volatile.Read(ref counters.Packets);
                var last = _rates.GetValueOrDefault(name);
                _rates[name] = (bytes, packets, (bytes - last.Bytes) * 8 / seconds, (packets - last.Packets) / seconds);
            }
        }
    }

    public void Dispose() => _sampler.Dispose();
}
