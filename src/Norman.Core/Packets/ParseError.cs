namespace Norman.Core.Packets;

/// <summary>Why a frame was not parsed; each value is a drop reason that the dataplane counts.</summary>
public enum ParseError : byte
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
}
