using System.Globalization;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Policy;

/// <summary>
/// What the filter's log and trace records say of a packet: chain, 5-tuple, length and owner. A plain struct, filled
/// in place on the dataplane thread and formatted on the control plane's.
/// </summary>
public struct PacketSummary
{
    public Chain Chain;
    public byte Protocol;
    public NetAddress Source, Destination;
    public ushort SourcePort, DestinationPort;
    public int Length;
    public long SocketId;
    public int OwnerPid;
    public int AppId;

    public void Fill(Chain chain, in ParsedPacket packet, PipeSocket? socket)
    {
        Chain = chain;
        Protocol = packet.Protocol;
        Source = packet.Source;
        Destination = packet.Destination;
        SourcePort = packet.SourcePort;
        DestinationPort = packet.DestinationPort;
        Length = packet.IpLength;
        SocketId = socket?.Id ?? 0;
        OwnerPid = socket?.OwnerPid ?? 0;
        AppId = socket?.AppId ?? -1;
    }

    /// <summary>"ingress udp 198.18.0.2:40000 > 198.18.0.1:80 len 28".</summary>
    public readonly string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Chain.ToString().ToLowerInvariant()} {IpProtocols.Name(Protocol)} {Source}:{SourcePort} > {Destination}:{DestinationPort} len {Length}");

    /// <summary>"app kvdb pid 42", or "no socket".</summary>
    public readonly string Owner(Func<int, string> appName) =>
        SocketId == 0 ? "no socket" : string.Create(CultureInfo.InvariantCulture, $"app {appName(AppId)} pid {OwnerPid}");
}
