using System.Globalization;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Qos;

/// <summary>
/// Reads `norman qos` words: a class's settings as tc's HTB names them (<c>band 0 weight 3 rate 200M ceil 1G burst
/// 30000 dscp ef police 100M</c>), and a class's match in filter words (<c>app kvdb</c>, <c>uid 1000 sport 6379</c>).
/// Unlike tc, units are bits per second ("100M" is 100 Mbit/s, never bytes), every setting has a sane default, and
/// an unknown word is an error that names it.
/// </summary>
public static class QosParser
{
    /// <summary>
    /// Applies settings words to <paramref name="start"/>; the words after <c>match</c>, if any, are returned as the
    /// class's first match.
    /// </summary>
    public static (TrafficClass Class, IReadOnlyList<string>? Match) ParseClass(TrafficClass start, IReadOnlyList<string> words)
    {
        var result = start;
        for (int i = 0; i < words.Count; i++)
        {
            string word = words[i];
            if (word == "match")
            {
                var match = words.Skip(i + 1).ToList();
                if (match.Count == 0)
                {
                    throw new FormatException("'match' needs filter words after it, e.g. 'match app kvdb'.");
                }
                return (Validate(result), match);
            }
            string value = i + 1 < words.Count ? words[++i]
                : throw new FormatException($"'{word}' needs a value after it.");
            result = word switch
            {
                "band" or "prio" => result with { Band = Integer(word, value, 0, TrafficClass.Bands - 1) },
                "weight" => result with { Weight = Integer(word, value, 1, TrafficClass.MaxWeight) },
                "rate" => result with { RateBits = Rate(word, value) },
                "ceil" => result with { CeilBits = Rate(word, value) },
                "burst" => result with { BurstBytes = Bytes(value) },
                "dscp" => result with { Dscp = FilterRuleParser.Dscp(value) },
                "police" => result with { PoliceBits = Rate(word, value) },
                _ => throw new FormatException($"'{word}' is not a class setting: use band, weight, rate, ceil, burst, dscp, police or match."),
            };
        }
        return (Validate(result), null);
    }

    /// <summary>Reads a match: filter words that choose sockets (who owns them, their ports and addresses).</summary>
    public static FilterRule ParseMatch(IReadOnlyList<string> words)
    {
        if (words.Count == 0)
        {
            throw new FormatException("A match needs words, e.g. 'app kvdb' or 'uid 1000 sport 6379'.");
        }
        FilterRule rule;
        try
        {
            rule = FilterRuleParser.Parse(Chain.Egress, [.. words, "accept"]);
        }
        catch (FormatException error) when (error.Message.Contains("no action", StringComparison.Ordinal))
        {
            // The last word wanted a value and took the "accept" the parser was given in its place.
            throw new FormatException($"The match '{string.Join(' ', words)}' ends too soon: its last word needs a value, " +
                "e.g. 'app kvdb', 'uid 1000', 'sport 6379'.", error);
        }
        if (rule.Pcap is not null || rule.CtStates != ConnectionState.None || rule.LimitRate > 0 || rule.IcmpTypes is not null
            || rule.Flags is not null || rule.Lengths is not null || rule.Protocols is not null
            || rule.Source?.SetName is not null || rule.Destination?.SetName is not null || rule.SourcePorts?.SetName is not null
            || rule.DestinationPorts?.SetName is not null)
        {
            throw new FormatException("A QoS match chooses sockets, not packets: use app, uid, gid, pid, cgroup, udp|tcp, sport (the " +
                "application's port), dport, ip saddr or ip daddr (its connected peer), dscp (as its packets carry it).");
        }
        return rule;
    }

    private static TrafficClass Validate(TrafficClass value)
    {
        if (value.CeilBits > 0 && value.RateBits > value.CeilBits)
        {
            throw new FormatException($"Class '{value.Name}': its rate ({TrafficClass.FormatRate(value.RateBits)}) is above its ceil " +
                $"({TrafficClass.FormatRate(value.CeilBits)}); a guarantee cannot exceed the ceiling.");
        }
        return value;
    }

    public static string ValidName(string name)
    {
        if (name.Length is 0 or > 32 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new FormatException($"'{name}' is not a class name: use up to 32 letters, digits, '-', '_' or '.'.");
        }
        return name;
    }

    private static int Integer(string word, string value, int low, int high) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int number) && number >= low && number <= high
            ? number
            : throw new FormatException($"'{word} {value}': {word} is a whole number from {low} to {high}.");

    private static long Rate(string word, string value)
    {
        try
        {
            return LineRate.Parse(value);
        }
        catch (FormatException)
        {
            throw new FormatException($"'{word} {value}': write a rate in bits per second like 100M, 2.5G or 800k.");
        }
    }

    private static long Bytes(string value)
    {
        string text = value.ToLowerInvariant();
        long multiplier = text.EndsWith('k') ? 1024 : text.EndsWith('m') ? 1024 * 1024 : 1;
        text = text.TrimEnd('k', 'm', 'b');
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long number) && number > 0
            ? number * multiplier
            : throw new FormatException($"'burst {value}': a burst is a size in bytes, like 30000, 64k or 1m.");
    }
}
