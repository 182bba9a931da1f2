using Norman.Core.Packets;

namespace Norman.Daemon.Policy;

/// <summary>
/// IPv6 networks compiled for lookups (an ipv6_addr set's, or a rule's own <c>{ … }</c>): grouped by prefix length,
/// each group a hash set of masked addresses, so that a lookup costs one hash probe per distinct prefix length (a set of
/// host addresses: one), whatever the number of elements. Immutable once built; read by the dataplane without locks.
/// </summary>
public sealed class Prefix6Set
{
    private readonly (ulong MaskHigh, ulong MaskLow, HashSet<(ulong, ulong)> Networks)[] _byLength;

    public Prefix6Set(IEnumerable<Network> networks)
    {
        _byLength = networks
            .GroupBy(n => n.Prefix)
            .OrderByDescending(g => g.Key)
            .Select(g =>
            {
                var (maskHigh, maskLow) = NetAddress.PrefixMask6(g.Key);
                return (maskHigh, maskLow, g.Select(n => (n.Address.High & maskHigh, n.Address.Low & maskLow)).ToHashSet());
            })
            .ToArray();
    }

    public bool Contains(NetAddress address)
    {
        foreach (var (maskHigh, maskLow, networks) in _byLength)
        {
            if (networks.Contains((address.High & maskHigh, address.Low & maskLow)))
            {
                return true;
            }
        }
        return false;
    }
}
