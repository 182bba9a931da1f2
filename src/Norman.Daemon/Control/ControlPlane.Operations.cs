using Norman.Core.Protocol;

namespace Norman.Daemon.Control;

/// <summary>One control operation: its name on the wire, who may ask for it and what it does (for a refusal), and its handler.</summary>
public sealed record ControlOperation(string Name, Privilege Needs, string What)
{
    /// <summary>Fills the answer and returns the descriptors to pass with it.</summary>
    internal Func<ControlPlane, ControlSession, ControlRequest, ControlResponse, Task<int[]>> Handle { get; init; } = null!;

    /// <summary>
    /// Handled on the control reactor's thread, where it was read (<see cref="ControlReactor"/>): bounded work that an
    /// application waits for on every socket it opens. The rest (listings, policy, captures) runs on the pool.
    /// </summary>
    public bool Quick { get; init; }
}

public sealed partial class ControlPlane
{
    /// <summary>
    /// Every operation, as genetlink's ops table has them: the privilege each needs is checked before its handler
    /// runs, and an operation missing here is refused, so none can slip in unchecked. The handlers live with their
    /// family (ControlPlane.Sockets, .Capture, .Filter, .Qos, .Stats).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, ControlOperation> Operations = new ControlOperation[]
    {
        new(ControlProtocol.Ops.Hello, Privilege.Anyone, "asking who the daemon is") { Handle = (p, s, q, a) => p.OnHello(s, q, a), Quick = true },
        new(ControlProtocol.Ops.Bind, Privilege.Anyone, "opening a socket") { Handle = (p, s, q, a) => p.OnBind(s, q, a), Quick = true },
        new(ControlProtocol.Ops.Inherit, Privilege.Anyone, "joining a listener one inherited (its descriptor is the proof)") { Handle = (p, s, q, a) => p.OnInherit(s, q, a), Quick = true },
        new(ControlProtocol.Ops.Connect, Privilege.Anyone, "connecting one's own socket") { Handle = (p, s, q, a) => p.OnConnect(s, q, a), Quick = true },
        new(ControlProtocol.Ops.Close, Privilege.Anyone, "closing one's own socket") { Handle = (p, s, q, a) => p.OnClose(s, q, a), Quick = true },
        new(ControlProtocol.Ops.ListenerHolder, Privilege.Anyone, "naming the descriptor one holds one's own listener by") { Handle = (p, s, q, a) => p.OnListenerHolder(s, q, a), Quick = true },
        new(ControlProtocol.Ops.QueueHandOver, Privilege.Anyone, "handing one's listener's queue to the process that joined it") { Handle = (p, s, q, a) => p.OnQueueHandOver(s, q, a), Quick = true },
        new(ControlProtocol.Ops.ConnectionHolder, Privilege.Anyone, "naming a connection of one's own listener that a forked child may take up") { Handle = (p, s, q, a) => p.OnConnectionHolder(s, q, a), Quick = true },
        new(ControlProtocol.Ops.ClaimConnection, Privilege.Anyone, "taking up a connection one inherited (its descriptor is the proof)") { Handle = (p, s, q, a) => p.OnClaimConnection(s, q, a), Quick = true },
        new(ControlProtocol.Ops.ConnectionHandOver, Privilege.Anyone, "handing one's listener's connection to the child that claimed it") { Handle = (p, s, q, a) => p.OnConnectionHandOver(s, q, a), Quick = true },
        new(ControlProtocol.Ops.KeepAcrossExec, Privilege.Anyone, "keeping one's own listener for the program one execs") { Handle = (p, s, q, a) => p.OnKeepAcrossExec(s, q, a), Quick = true },
        new(ControlProtocol.Ops.StopListening, Privilege.Anyone, "stopping one's own listener") { Handle = (p, s, q, a) => p.OnStopListening(s, q, a), Quick = true },
        new(ControlProtocol.Ops.Sockets, Privilege.Anyone, "listing sockets") { Handle = (p, s, q, a) => p.OnSockets(s, q, a) },
        new(ControlProtocol.Ops.Counters, Privilege.Anyone, "reading counters") { Handle = (p, s, q, a) => p.OnCounters(s, q, a) },
        new(ControlProtocol.Ops.Stats, Privilege.Anyone, "reading statistics") { Handle = (p, s, q, a) => p.OnStats(s, q, a) },
        new(ControlProtocol.Ops.Conntrack, Privilege.Administrator,
            "listing tracked connections (everyone's addresses, as conntrack -L needs CAP_NET_ADMIN)") { Handle = (p, s, q, a) => p.OnConntrack(s, q, a) },
        new(ControlProtocol.Ops.FilterList, Privilege.Anyone, "listing the filter policy") { Handle = (p, s, q, a) => p.OnFilterList(s, q, a) },
        new(ControlProtocol.Ops.FilterSave, Privilege.Anyone, "saving the filter policy as text") { Handle = (p, s, q, a) => p.OnFilterSave(s, q, a) },
        new(ControlProtocol.Ops.FilterTrace, Privilege.Anyone, "tracing a described packet through the policy") { Handle = (p, s, q, a) => p.OnFilterTrace(s, q, a) },
        new(ControlProtocol.Ops.FilterTraceStart, Privilege.Administrator, "tracing live traffic") { Handle = (p, s, q, a) => p.OnFilterTraceStart(s, q, a) },
        new(ControlProtocol.Ops.FilterTracePoll, Privilege.Administrator, "reading a live trace") { Handle = (p, s, q, a) => p.OnFilterTracePoll(s, q, a) },
        new(ControlProtocol.Ops.FilterTraceStop, Privilege.Administrator, "stopping a live trace") { Handle = (p, s, q, a) => p.OnFilterTraceStop(s, q, a) },
        new(ControlProtocol.Ops.CaptureStart, Privilege.Anyone, "capturing one's own sockets' packets (everyone's needs an administrator)") { Handle = (p, s, q, a) => p.OnCaptureStart(s, q, a) },
        new(ControlProtocol.Ops.CaptureStats, Privilege.Anyone, "reading one's own capture's counters") { Handle = (p, s, q, a) => p.OnCaptureStats(s, q, a) },
        FilterChange(ControlProtocol.Ops.FilterAdd),
        FilterChange(ControlProtocol.Ops.FilterDelete),
        FilterChange(ControlProtocol.Ops.FilterFlush),
        FilterChange(ControlProtocol.Ops.FilterPolicy),
        FilterChange(ControlProtocol.Ops.FilterRestore),
        FilterChange(ControlProtocol.Ops.FilterSetAdd),
        FilterChange(ControlProtocol.Ops.FilterSetDelete),
        FilterChange(ControlProtocol.Ops.FilterElementAdd),
        FilterChange(ControlProtocol.Ops.FilterElementDelete),
        new(ControlProtocol.Ops.QosShow, Privilege.Anyone, "showing QoS classes") { Handle = (p, s, q, a) => p.OnQosShow(s, q, a) },
        QosChange(ControlProtocol.Ops.QosAdd),
        QosChange(ControlProtocol.Ops.QosChange),
        QosChange(ControlProtocol.Ops.QosDelete),
        QosChange(ControlProtocol.Ops.QosMatchAdd),
        QosChange(ControlProtocol.Ops.QosMatchDelete),
    }.ToDictionary(operation => operation.Name);

    private static ControlOperation FilterChange(string name) =>
        new(name, Privilege.Administrator, "changing the filter policy") { Handle = (p, s, q, a) => p.OnFilterChange(s, q, a) };

    private static ControlOperation QosChange(string name) =>
        new(name, Privilege.Administrator, "changing QoS classes") { Handle = (p, s, q, a) => p.OnQosChange(s, q, a) };
}
