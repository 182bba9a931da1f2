namespace Norman.Core.Packets;

/// <summary>
/// Which of a host's IPv6 addresses a packet to a destination leaves from, one rule for the daemon and the client
/// library alike: the link-local one for a link-local destination (RFC 6724's scope rule), else the first global one
/// whose prefix holds the destination (its longest-match rule, as far as a host on one link needs it), else the
/// first global one. Addresses come in the host's order, its main address first.
/// </summary>
public static class SourceChoice6
{
    public static NetAddress? Choose(IReadOnlyList<(NetAddress Address, int PrefixLength)> addresses, NetAddress destination)
    {
        bool linkLocal = destination.IsLinkLocal6;
        NetAddress? firstGlobal = null;
        foreach (var (address, prefixLength) in addresses)
        {
            if (address.IsLinkLocal6)
            {
                if (linkLocal)
                {
                    return address;
                }
                continue;
            }
            firstGlobal ??= address;
            if (!linkLocal && destination.SharesPrefix6(address, prefixLength))
            {
                return address;
            }
        }
        return firstGlobal ?? (addresses.Count > 0 ? addresses[0].Address : null);
    }
}
