namespace Norman.Client.Tcp;

/// <summary>A TCP socket's congestion control, as Linux's net.ipv4.tcp_congestion_control and TCP_CONGESTION choose it.</summary>
public enum TcpCongestionControl
{
    /// <summary>CUBIC (RFC 9438): the default, as Linux's.</summary>
    Cubic,
    /// <summary>NewReno (RFC 5681, RFC 6582): what `ss -ti` calls "reno".</summary>
    NewReno,
}
