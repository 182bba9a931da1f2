namespace Norman.Client.Tcp;

/// <summary>The connection states of RFC 9293 §3.3.2 (LISTEN belongs to the endpoint, not to a connection).</summary>
public enum TcpState
{
    Closed,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

/// <summary>A received segment, parsed and checked by the endpoint; its payload points into the RX pipe.</summary>
internal readonly ref struct TcpSegment
{
    public uint Sequence { get; init; }
    public uint Acknowledgement { get; init; }
    public byte Flags { get; init; }
    public ushort Window { get; init; }
    public ReadOnlySpan<byte> Payload { get; init; }
    /// <summary>The MSS option of a SYN; 0 when absent.</summary>
    public ushort Mss { get; init; }
    /// <summary>The window scale option of a SYN; -1 when absent.</summary>
    public int WindowScale { get; init; }
    /// <summary>The segment's option bytes (SACK blocks are read from them when SACK is in use).</summary>
    public ReadOnlySpan<byte> Options { get; init; }
    /// <summary>The SACK-permitted option of a SYN (RFC 2018).</summary>
    public bool SackPermitted { get; init; }
    /// <summary>The timestamps option (RFC 7323), on any segment: whether present, TSval and TSecr.</summary>
    public bool HasTimestamps { get; init; }
    public uint TimestampValue { get; init; }
    public uint TimestampEcho { get; init; }

    public bool Has(byte flag) => (Flags & flag) != 0;

    /// <summary>Sequence space the segment occupies: its data, and one each for SYN and FIN.</summary>
    public int Length => Payload.Length + (Has(Norman.Core.Packets.TcpHeader.Syn) ? 1 : 0) + (Has(Norman.Core.Packets.TcpHeader.Fin) ? 1 : 0);
}
