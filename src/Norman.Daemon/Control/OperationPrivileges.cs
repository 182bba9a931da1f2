using Norman.Core.Protocol;

namespace Norman.Daemon.Control;

/// <summary>Who may ask for an operation: anyone who can reach the control socket, or an administrator only.</summary>
public enum Privilege
{
    /// <summary>Any user, as with socket(2) and ss(8); what the answer shows about others is limited as Linux limits it.</summary>
    Anyone,
    /// <summary>Root or the admin group, as of their connect (nft and tc require CAP_NET_ADMIN; see PeerIdentity for why capabilities do not count here).</summary>
    Administrator,
}

/// <summary>
/// Every control operation and the privilege it needs, in one table that the control plane checks before it
/// handles a request. An operation missing here is refused, so a new one cannot slip in unchecked.
/// </summary>
public static class OperationPrivileges
{
    public static readonly IReadOnlyDictionary<string, (Privilege Needs, string What)> All = new Dictionary<string, (Privilege, string)>
    {
        [ControlProtocol.Ops.Hello] = (Privilege.Anyone, "asking who the daemon is"),
        [ControlProtocol.Ops.Bind] = (Privilege.Anyone, "opening a socket"),
        [ControlProtocol.Ops.Connect] = (Privilege.Anyone, "connecting one's own socket"),
        [ControlProtocol.Ops.Close] = (Privilege.Anyone, "closing one's own socket"),
        [ControlProtocol.Ops.Sockets] = (Privilege.Anyone, "listing sockets"),
        [ControlProtocol.Ops.Counters] = (Privilege.Anyone, "reading counters"),
        [ControlProtocol.Ops.Stats] = (Privilege.Anyone, "reading statistics"),
        [ControlProtocol.Ops.Conntrack] = (Privilege.Administrator, "listing tracked connections (everyone's addresses, as conntrack -L needs CAP_NET_ADMIN)"),
        [ControlProtocol.Ops.FilterList] = (Privilege.Anyone, "listing the filter policy"),
        [ControlProtocol.Ops.FilterSave] = (Privilege.Anyone, "saving the filter policy as text"),
        [ControlProtocol.Ops.FilterTrace] = (Privilege.Anyone, "tracing a described packet through the policy"),
        [ControlProtocol.Ops.FilterTraceStart] = (Privilege.Administrator, "tracing live traffic"),
        [ControlProtocol.Ops.FilterTracePoll] = (Privilege.Administrator, "reading a live trace"),
        [ControlProtocol.Ops.FilterTraceStop] = (Privilege.Administrator, "stopping a live trace"),
        [ControlProtocol.Ops.CaptureStart] = (Privilege.Anyone, "capturing one's own sockets' packets (everyone's needs an administrator)"),
        [ControlProtocol.Ops.CaptureStats] = (Privilege.Anyone, "reading one's own capture's counters"),
        [ControlProtocol.Ops.FilterAdd] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.FilterDelete] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.FilterFlush] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.FilterPolicy] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.FilterRestore] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.FilterSetAdd] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.FilterSetDelete] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.FilterElementAdd] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.FilterElementDelete] = (Privilege.Administrator, "changing the filter policy"),
        [ControlProtocol.Ops.QosShow] = (Privilege.Anyone, "showing QoS classes"),
        [ControlProtocol.Ops.QosAdd] = (Privilege.Administrator, "changing QoS classes"),
        [ControlProtocol.Ops.QosChange] = (Privilege.Administrator, "changing QoS classes"),
        [ControlProtocol.Ops.QosDelete] = (Privilege.Administrator, "changing QoS classes"),
        [ControlProtocol.Ops.QosMatchAdd] = (Privilege.Administrator, "changing QoS classes"),
        [ControlProtocol.Ops.QosMatchDelete] = (Privilege.Administrator, "changing QoS classes"),
    };
}
