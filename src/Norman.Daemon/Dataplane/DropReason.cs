namespace Norman.Daemon.Dataplane;

/// <summary>
/// Every reason the dataplane drops a packet; each has a counter. Parse failures come first in the same order
/// as <see cref="Norman.Core.Packets.ParseError"/> so one maps onto the other by value.
/// </summary>
public enum DropReason
{
    None = 0,
    TruncatedEthernet,
    TruncatedVlan,
    TooManyVlanTags,
    UnknownEtherType,
    TruncatedArp,
    MalformedArp,
    TruncatedIp,
    BadIpVersion,
    BadIpHeaderLength,
    BadIpTotalLength,
    BadIpChecksum,
    TruncatedIpv6ExtensionHeader,
    TooManyIpv6ExtensionHeaders,
    TruncatedTransport,
    BadUdpLength,
    BadTcpHeaderLength,

    NotForThisHost,
    BadUdpChecksum,
    NoSocket,
    UnsupportedProtocol,
    IpFragment,
    RxPipeFull,

    TxCorruptIndex,
    TxCorruptLength,
    TxMalformed,
    TxSpoofedSource,
    TxTooBig,
    NeighbourUnreachable,
    HostTxFull,
    PortTxFull,
    FilteredIngress,
    FilteredEgress,
    /// <summary>Received above its QoS class's policing rate.</summary>
    Policed,
    /// <summary>ARP that would change the MAC of an address already resolved, outside an exchange Norman started.</summary>
    ArpMacChange,
    /// <summary>A received frame longer than the MTU allows (1500 bytes of IP, two VLAN tags): a jumbo frame, or a runaway.</summary>
    FrameTooLong,
    /// <summary>ARP from a new neighbour while the neighbour table is full of others' (a flood of forged requests).</summary>
    NeighbourTableFull,
    /// <summary>A TCP segment for this host whose checksum is wrong.</summary>
    BadTcpChecksum,
    /// <summary>
    /// A frame tagged with a VLAN (other than 0, priority only) while this host has none configured: as on Linux
    /// without that VLAN's interface, it is not the host's traffic.
    /// </summary>
    VlanNotConfigured,
    /// <summary>A neighbour solicitation or advertisement with a hop limit other than 255 (it crossed a router) or a bad checksum.</summary>
    MalformedNeighbourDiscovery,
    /// <summary>Neighbour discovery that would change the MAC of an IPv6 address already resolved, outside an exchange Norman started.</summary>
    NeighbourMacChange,
}

public static class DropReasons
{
    /// <summary>How many reasons there are (None included): every counter array is this long.</summary>
    public static readonly int Count = Enum.GetValues<DropReason>().Length;

    private static readonly string[] Names = BuildNames();

    /// <summary>snake_case, as Prometheus labels and JSON keys want it.</summary>
    public static string Name(DropReason reason) => Names[(int)reason];

    private static string[] BuildNames()
    {
        var names = new string[Count];
        for (int i = 0; i < Count; i++)
        {
            string pascal = ((DropReason)i).ToString();
            var builder = new System.Text.StringBuilder();
            foreach (char c in pascal)
            {
                if (char.IsUpper(c) && builder.Length > 0)
                {
                    builder.Append('_');
                }
                builder.Append(char.ToLowerInvariant(c));
            }
            names[i] = builder.ToString();
        }
        return names;
    }
}
