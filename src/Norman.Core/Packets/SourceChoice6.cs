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
        bool linkLocal = IsLinkLocal(destination);
        NetAddress? firstGlobal = null;
        foreach (var (address, prefixLength) in addresses)
        {
            if (IsLinkLocal(address))
            {
                if (linkLocal)
                {
                    return address;
                }
                continue;
            }
            firstGlobal ??= address;
            if (!linkLocal && SamePrefix(destination, address, prefixLength))
            {
                return address;
            }
        }
        return firstGlobal ?? (addresses.Count > 0 ? addresses[0].Address : null);
    }

    /// <summary>True for fe80::/10.</summary>
    public static bool IsLinkLocal(NetAddress address) => !address.IsV4 && address.High >> 54 == 0xFE80 >> 6;

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> share their first <paramref name="prefixLength"/> bits.</summary>
    public static bool SamePrefix(NetAddress a, NetAddress b, int prefixLength)
    {
        ulong highMask = prefixLength >= 64 ? ulong.MaxValue : prefixLength <= 0 ? 0 : ulong.MaxValue << (64 - prefixLength);
        ulong lowMask = prefixLength <= 64 ? 0 : prefixLength >= 128 ? ulong.MaxValue : ulong.MaxValue << (128 - prefixLength);
        return ((a.High ^ b.High) & highMask) == 0 && ((a.Low ^ b.Low) & lowMask) == 0;
    }
}
