using Norman.Daemon.Policy;

namespace Norman.Daemon.Qos;

/// <summary>
/// A match that puts sockets into a class: filter words as the socket sends (egress), so <c>sport</c> is the
/// application's own port and <c>ip daddr</c>/<c>dport</c> its connected peer, and <c>dscp</c> the DSCP of its
/// packets: those it sends for scheduling, those it receives for policing. A TX pipe is one queue, so a class is
/// chosen per socket and direction, never per packet (serving one socket's datagrams out of order would reorder
/// them): by the first packet the dataplane looks at in that direction after the policy changed.
/// </summary>
public sealed record ClassMatch(long Handle, string ClassName, FilterRule Rule)
{
    public override string ToString()
    {
        string rule = Rule.ToString();
        // The parser needed an action to read the words; a match has none.
        return rule.EndsWith(" accept", StringComparison.Ordinal) ? rule[..^" accept".Length] : rule == "accept" ? "" : rule;
    }
}
