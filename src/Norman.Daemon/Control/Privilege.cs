namespace Norman.Daemon.Control;

/// <summary>Who may ask for an operation: anyone who can reach the control socket, or an administrator only.</summary>
public enum Privilege
{
    /// <summary>Any user, as with socket(2) and ss(8); what the answer shows about others is limited as Linux limits it.</summary>
    Anyone,
    /// <summary>Root or the admin group, as of their connect (nft and tc require CAP_NET_ADMIN; see PeerIdentity for why capabilities do not count here).</summary>
    Administrator,
}
