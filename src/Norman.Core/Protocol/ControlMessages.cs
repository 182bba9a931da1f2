using System.Text.Json.Serialization;

namespace Norman.Core.Protocol;

/// <summary>
/// A request on the control socket. One shape for every operation keeps the protocol easy to read in a capture
/// and easy to script against; <see cref="Op"/> says which fields matter (see docs/control-protocol.md).
/// </summary>
public sealed class ControlRequest
{
    /// <summary>The protocol version the caller speaks; the daemon refuses versions it does not know.</summary>
    public int Version { get; set; } = ControlProtocol.Version;
    public long Id { get; set; }
    public string Op { get; set; } = "";
    /// <summary>Send no answer (the client library's close: its next request on the connection is handled after it all the same).</summary>
    public bool? NoReply { get; set; }

    public string? Protocol { get; set; }
    public string? Address { get; set; }
    public int? Port { get; set; }
    public long? SocketId { get; set; }
    public string? RemoteAddress { get; set; }
    public int? RemotePort { get; set; }
    public int? SlotCount { get; set; }
    /// <summary>bind to ::: IPV6_V6ONLY, IPv6 only (by default such a socket takes IPv4 too, as v4-mapped addresses).</summary>
    public bool? V6Only { get; set; }
    /// <summary>bind: SO_REUSEADDR; two UDP sockets that both ask may share a port when one is connected or their addresses differ.</summary>
    public bool? ReuseAddress { get; set; }
    /// <summary>bind: SO_REUSEPORT; UDP sockets of one user that all ask share an address and port, each sender's datagrams going to one of them.</summary>
    public bool? ReusePort { get; set; }
    /// <summary>
    /// close: the caller keeps its mapping of the socket's memory for a later bind on this connection (at most
    /// <see cref="ControlProtocol.MaxKeptMemory"/>), so the daemon keeps the memory too, its slots emptied, instead of freeing it.
    /// </summary>
    public bool? KeepMemory { get; set; }
    /// <summary>keep-across-exec: mark (true) or unmark (false, the exec failed) the listener.</summary>
    public bool? Keep { get; set; }
    /// <summary>
    /// bind: the sockets whose memory the caller still keeps mapped (closed with <see cref="KeepMemory"/>); the daemon
    /// may grant one of them again (<see cref="SocketGrant.ReusedMemory"/>) and frees those the caller no longer names.
    /// </summary>
    public List<long>? KeptMemory { get; set; }
    /// <summary>
    /// keep-across-exec: the connections the listener's stack had made and the program not yet accepted, for the program
    /// the process execs (Linux keeps them in the listener's queue; here they lived in the program's stack).
    /// </summary>
    public List<HandedOverConnection>? HandedOver { get; set; }
    /// <summary>connection-handover: the ask this answers (<see cref="Pipes.PipeLayout.ConnectionWantedOffset"/>'s count), and whether more of the connection's received bytes follow in the next request.</summary>
    public int? Sequence { get; set; }
    public bool? More { get; set; }

    /// <summary>filter operations: the chain (ingress, egress), a rule's words, a rule's handle, a policy.</summary>
    public string? Chain { get; set; }
    public List<string>? Rule { get; set; }
    public long? Handle { get; set; }
    public bool? Insert { get; set; }
    public string? Policy { get; set; }
    /// <summary>filter-set-* and filter-element-*: the set, its type (ipv4_addr, inet_service), its elements.</summary>
    public string? SetName { get; set; }
    public string? SetType { get; set; }
    public List<string>? Elements { get; set; }
    /// <summary>filter-trace-start: a libpcap expression and how many packets to trace.</summary>
    public string? Expression { get; set; }
    public int? Count { get; set; }
    /// <summary>capture-start: snap length, and only this application's packets.</summary>
    public int? SnapLength { get; set; }
    public string? App { get; set; }
    /// <summary>capture-start: record only what the filter let through (by default, also what it stopped, marked).</summary>
    public bool? AfterFilter { get; set; }
    /// <summary>qos-*: the class a change is about (its settings, or a match, ride in <see cref="Rule"/>).</summary>
    public string? Class { get; set; }
    /// <summary>filter-restore: the lines of a policy file; with <see cref="DryRun"/>, checked as for real and not applied; <see cref="AllowEmpty"/> takes an empty file as no change.</summary>
    public List<string>? Lines { get; set; }
    public bool? DryRun { get; set; }
    public bool? AllowEmpty { get; set; }
    /// <summary>sockets: where this page starts, as the previous answer's <see cref="ControlResponse.NextCursor"/> said; 0 or none for the first.</summary>
    public int? Cursor { get; set; }
}

/// <summary>The daemon's answer to one <see cref="ControlRequest"/>, with the same id.</summary>
public sealed class ControlResponse
{
    public int Version { get; set; } = ControlProtocol.Version;
    public long Id { get; set; }
    public bool Ok { get; set; }
    public ControlError? Error { get; set; }
    /// <summary>inherit, by the program its process exec'd: the connections the listener's program handed over (<see cref="ControlRequest.HandedOver"/>).</summary>
    public List<HandedOverConnection>? HandedOver { get; set; }
    public SocketGrant? Socket { get; set; }
    public List<SocketInfo>? Sockets { get; set; }
    public DaemonInfo? Daemon { get; set; }
    public Dictionary<string, long>? Counters { get; set; }
    public FilterInfo? Filter { get; set; }
    public TraceInfo? Trace { get; set; }
    public CaptureInfo? Capture { get; set; }
    public QosInfo? Qos { get; set; }
    public StatsInfo? Stats { get; set; }
    public ConntrackInfo? Conntrack { get; set; }
    /// <summary>A listing that did not fit one answer: ask again with this <see cref="ControlRequest.Cursor"/> for the rest.</summary>
    public int? NextCursor { get; set; }
    /// <summary>What the caller should know about a change that was made (a rule naming a program no socket runs, say), to show on stderr.</summary>
    public List<string>? Notes { get; set; }
}

/// <summary>Every counter at once, for `norman stats` and the Prometheus endpoint: the dataplane's (drops by reason
/// among them), each socket's, each filter rule's and each QoS class's.</summary>
public sealed class StatsInfo
{
    /// <summary>The port, as the daemon names it (an xdp port with its mode: native or generic, copy or zero-copy, its queues).</summary>
    public string Port { get; set; } = "";
    public Dictionary<string, long> Counters { get; set; } = new();
    public List<SocketInfo> Sockets { get; set; } = new();
    public List<RuleInfo> Rules { get; set; } = new();
    public List<QosClassInfo> Classes { get; set; } = new();
}

/// <summary>What `norman qos show` shows: the port's line rate and every class with its counters.</summary>
public sealed class QosInfo
{
    public long LineRateBits { get; set; }
    public List<QosClassInfo> Classes { get; set; } = new();
}

/// <summary>One QoS class: its settings (0 or -1 for none), its matches, and what it did.</summary>
public sealed class QosClassInfo
{
    public string Name { get; set; } = "";
    /// <summary>The class in `norman qos add` words.</summary>
    public string Spec { get; set; } = "";
    public int Band { get; set; }
    public int Weight { get; set; }
    public long RateBits { get; set; }
    public long CeilBits { get; set; }
    public long BurstBytes { get; set; }
    public int Dscp { get; set; }
    public long PoliceBits { get; set; }
    public List<QosMatchInfo> Matches { get; set; } = new();
    /// <summary>Bits and packets per second sent over the last second.</summary>
    public double SentBitsPerSecond { get; set; }
    public double SentPacketsPerSecond { get; set; }
    public long Packets { get; set; }
    public long Bytes { get; set; }
    /// <summary>Packets dropped by ingress policing.</summary>
    public long Drops { get; set; }
    /// <summary>Packets waiting in the class's TX pipes.</summary>
    public long Backlog { get; set; }
    public long Overlimits { get; set; }
}

public sealed class QosMatchInfo
{
    public long Handle { get; set; }
    public string Match { get; set; } = "";
}

/// <summary>A capture: its ring's geometry (the memfd and eventfd ride along) and its counters.</summary>
public sealed class CaptureInfo
{
    public long TapId { get; set; }
    public int SlotCount { get; set; }
    public int SlotSize { get; set; }
    public long RegionBytes { get; set; }
    public int SnapLength { get; set; }
    public long Captured { get; set; }
    public long Dropped { get; set; }
    /// <summary>True when the caller may see only its own user's packets.</summary>
    public bool OwnPacketsOnly { get; set; }
}

/// <summary>What `norman trace` shows: the packet, its owner, each rule walked, the verdict.</summary>
public sealed class TraceInfo
{
    public string Packet { get; set; } = "";
    public string Owner { get; set; } = "";
    public List<TraceStep> Steps { get; set; } = new();
    public string Verdict { get; set; } = "";
    /// <summary>Live trace: packets traced since the last poll, and how many are still to come.</summary>
    public List<string>? Events { get; set; }
    public int Remaining { get; set; }
}

public sealed class TraceStep
{
    public long Handle { get; set; }
    public string Rule { get; set; } = "";
    public bool Matched { get; set; }
    public string Note { get; set; } = "";
}

/// <summary>The filtering policy as `norman filter list` shows it.</summary>
public sealed class FilterInfo
{
    public string IngressPolicy { get; set; } = "accept";
    public string EgressPolicy { get; set; } = "accept";
    public long Generation { get; set; }
    public List<RuleInfo> Rules { get; set; } = new();
    public List<SetInfo> Sets { get; set; } = new();
    /// <summary>filter-save: the policy in the file format.</summary>
    public List<string>? Lines { get; set; }
}

/// <summary>A named set, with how many elements it holds.</summary>
public sealed class SetInfo
{
    public string Name { get; set; } = "";
    public string Type { get; set; } = "";
    public int Elements { get; set; }
}

/// <summary>One rule with its counters.</summary>
public sealed class RuleInfo
{
    public long Handle { get; set; }
    public string Chain { get; set; } = "";
    public string Rule { get; set; } = "";
    public long Packets { get; set; }
    public long Bytes { get; set; }
}

/// <summary>A refused operation: an errno-like code for programs and a sentence for people that says what to do.</summary>
public sealed record ControlError(string Code, string Message);

/// <summary>
/// What a successful bind gives the application. The memfd holding both rings and the RX eventfd travel with this
/// message as SCM_RIGHTS, in that order.
/// </summary>
/// <summary>
/// A TCP connection made and not yet accepted, as its stack hands it to the program its process execs: what resumes it
/// there (sequence spaces, the options the handshake agreed, the bytes received and not read). Nothing of it was sent
/// beyond the handshake: the program never had it.
/// </summary>
public sealed class HandedOverConnection
{
    /// <summary>The most a connection may carry of bytes received and not read; one with more is not handed over.</summary>
    public const int MaxReceivedBytes = 16 << 10;
    /// <summary>The most a listener hands over, and their received bytes together: the request stays within an ordinary caller's 64 KB.</summary>
    public const int MaxConnections = 32;
    public const int MaxReceivedBytesInAll = 24 << 10;
    /// <summary>A connection a forked child takes up carries up to its whole receive buffer, in parts of at most <see cref="PartBytes"/> (connection-handover's more).</summary>
    public const int MaxClaimedBytes = 1 << 20;
    public const int PartBytes = 32 << 10;

    public string LocalAddress { get; set; } = "";
    public string RemoteAddress { get; set; } = "";
    public int RemotePort { get; set; }
    public uint SendNext { get; set; }
    public long SendWindow { get; set; }
    public long MaxSendWindow { get; set; }
    public uint SendWindowUpdateSequence { get; set; }
    public uint SendWindowUpdateAck { get; set; }
    public int SendWindowScale { get; set; }
    public int SendMss { get; set; }
    public uint ReceiveNext { get; set; }
    public uint AdvertisedEdge { get; set; }
    public int ReceiveWindowScale { get; set; }
    public bool Timestamps { get; set; }
    public uint TimestampRecent { get; set; }
    public uint TimestampOrigin { get; set; }
    public bool Sack { get; set; }
    public bool FinReceived { get; set; }
    public byte[] Received { get; set; } = [];
}

public sealed class SocketGrant
{
    public long SocketId { get; set; }
    public string LocalAddress { get; set; } = "";
    public int LocalPort { get; set; }
    /// <summary>
    /// The source address the socket's IPv4 packets must carry: its own, or the host's when bound to a wildcard that takes
    /// IPv4 (0.0.0.0, or :: without v6-only); empty when the socket sends no IPv4.
    /// </summary>
    public string SourceAddress { get; set; } = "";
    /// <summary>
    /// The addresses the socket's IPv6 packets may carry as their source, each with its prefix ("fd66::1/64"): its own
    /// (/128), or on :: the host's, its main one first; the client chooses among them as the daemon would
    /// (<c>SourceChoice6</c>). Null when the socket sends no IPv6.
    /// </summary>
    public List<string>? SourceAddresses6 { get; set; }
    public int SlotCount { get; set; }
    public int SlotSize { get; set; }
    public long RegionBytes { get; set; }
    /// <summary>
    /// The socket's bit in its user's ready map (<c>ReadyMap</c>), whose memfd comes as the bind's fourth descriptor: the
    /// application marks it after each publish. Null: no map (the dataplane finds the socket's packets by its sweep).
    /// </summary>
    public int? ReadyBit { get; set; }
    /// <summary>Which of the daemon's ready maps the fourth descriptor is: a user's map is made again after all its sockets closed.</summary>
    public long? ReadyMapId { get; set; }
    /// <summary>
    /// The socket's memory is the one the caller kept from this closed socket (named in the bind's
    /// <see cref="ControlRequest.KeptMemory"/>), its rings made new: no memfd travels, so every other descriptor
    /// comes one place earlier.
    /// </summary>
    public long? ReusedMemory { get; set; }
}

/// <summary>One socket as <c>norman ss</c> shows it.</summary>
public sealed class SocketInfo
{
    /// <summary>A TCP connection's figures as `ss -ti` shows a kernel's; null for sockets and for UDP.</summary>
    public TcpConnectionInfo? Tcp { get; set; }
    public long Id { get; set; }
    public string Protocol { get; set; } = "udp";
    public string State { get; set; } = "UNCONN";
    public string LocalAddress { get; set; } = "";
    public int LocalPort { get; set; }
    public string RemoteAddress { get; set; } = "";
    public int RemotePort { get; set; }
    public int Pid { get; set; }
    public int Uid { get; set; }
    public string ProcessName { get; set; } = "";
    public string CommandLine { get; set; } = "";
    public long RecvQ { get; set; }
    public long SendQ { get; set; }
    public long RxPackets { get; set; }
    public long RxBytes { get; set; }
    public long TxPackets { get; set; }
    public long TxBytes { get; set; }
    public Dictionary<string, long> Drops { get; set; } = new();
    /// <summary>Slots in each of its pipes: Recv-Q and Send-Q out of this is how full they are.</summary>
    public int SlotCount { get; set; }
    /// <summary>Bytes a slot holds (the largest datagram the pipe carries, with its headers).</summary>
    public int SlotSize { get; set; }
    /// <summary>Times the dataplane woke the application (it slept on its eventfd with packets arriving).</summary>
    public long Wakeups { get; set; }
    /// <summary>Breaths in which the dataplane stopped at the bound on this socket's bad TX slots (garbage it writes).</summary>
    public long TxThrottled { get; set; }
    /// <summary>A TCP socket's totals over all its connections, as its application's stack reports them: challenge ACKs sent, resets ignored.</summary>
    public long TcpChallengeAcks { get; set; }
    public long TcpResetsIgnored { get; set; }
    /// <summary>Milliseconds since the dataplane last delivered to it, and last sent for it; -1 for never.</summary>
    public long LastReceiveMilliseconds { get; set; } = -1;
    public long LastSendMilliseconds { get; set; } = -1;
    /// <summary>The QoS class that schedules what it sends; null before its first packet was classified.</summary>
    public string? QosClass { get; set; }
    /// <summary>Which stack the socket is on, in `norman ss --kernel`: "norman", or "kernel" (read from /proc/net).</summary>
    public string? Path { get; set; }
}

/// <summary>Who the daemon is, for <c>hello</c>: version, addresses and port.</summary>
public sealed class DaemonInfo
{
    public string Version { get; set; } = "";
    public int Pid { get; set; }
    public string Port { get; set; } = "";
    public string Address { get; set; } = "";
    public string Mac { get; set; } = "";
}

/// <summary>What the application's TCP stack reports of one connection.</summary>
public sealed class TcpConnectionInfo
{
    /// <summary>"cubic" or "reno", as `ss -ti` names them; null when the stack did not say.</summary>
    public string? CongestionControl { get; set; }
    /// <summary>Timestamps (RFC 7323) in use: `ss -ti` shows "ts".</summary>
    public bool Timestamps { get; set; }
    /// <summary>SACK (RFC 2018) in use: `ss -ti` shows "sack".</summary>
    public bool Sack { get; set; }
    public long RttMicroseconds { get; set; }
    public int RtoMilliseconds { get; set; }
    public int Mss { get; set; }
    public long CongestionWindowBytes { get; set; }
    public long Retransmits { get; set; }
    /// <summary>Challenge ACKs sent and resets ignored (RFC 5961), as Linux's TcpExtTCPChallengeACK counts them.</summary>
    public long ChallengeAcks { get; set; }
    public long ResetsIgnored { get; set; }
}

/// <summary>Connection tracking's table, as `conntrack -L` lists it.</summary>
public sealed class ConntrackInfo
{
    /// <summary>False while no `ct` rule is in force: the dataplane tracks nothing then, as Linux without nf_conntrack.</summary>
    public bool Active { get; set; }
    public int Count { get; set; }
    public int Max { get; set; }
    public long TableFull { get; set; }
    public List<TrackedFlowInfo> Flows { get; set; } = new();
}

/// <summary>One tracked flow, in its original direction (who spoke first) as conntrack prints it.</summary>
public sealed class TrackedFlowInfo
{
    public string Protocol { get; set; } = "";
    /// <summary>TCP's state as Linux names it (SYN_SENT, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, TIME_WAIT, CLOSE); empty for UDP.</summary>
    public string State { get; set; } = "";
    public int SecondsLeft { get; set; }
    public string Source { get; set; } = "";
    public int SourcePort { get; set; }
    public string Destination { get; set; } = "";
    public int DestinationPort { get; set; }
    /// <summary>False until a packet has gone the other way ([UNREPLIED]).</summary>
    public bool Replied { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = false)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(HandedOverConnection))]
[JsonSerializable(typeof(ControlResponse))]
[JsonSerializable(typeof(List<SocketInfo>))]
[JsonSerializable(typeof(SocketInfo))]
[JsonSerializable(typeof(FilterInfo))]
[JsonSerializable(typeof(TraceInfo))]
[JsonSerializable(typeof(QosInfo))]
[JsonSerializable(typeof(ConntrackInfo))]
public sealed partial class ControlJson : JsonSerializerContext;
