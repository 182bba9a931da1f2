using Norman.Daemon.Policy;

namespace Norman.Daemon.Qos;

/// <summary>
/// A match that puts sockets into a class: filter words as the socket sends (egress), so <c>sport</c> is the
/// application's own port and <c>ip daddr</c>/<c>dport</c> its connected peer, and <c>dscp</c> the DSCP its packets
/// carry. A TX pipe is one queue, so a class is chosen per socket, never per packet (serving one socket's datagrams
/// out of order would reorder them): by the first packet the dataplane looks at after the policy changed.
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
