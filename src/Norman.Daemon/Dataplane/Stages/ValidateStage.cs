using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane.Stages;

/// <summary>
/// Egress: checks each packet, in the dataplane's own copy, as a well-formed IPv4 or IPv6 datagram of its socket —
/// anti-spoofing: its source address, protocol and source port must be the socket's own (of the family the socket
/// may send: <see cref="PipeSocket.MaySendFrom"/>), so no application can send as another, or as the host. Anything else is a counted drop against the sending socket.
/// </summary>
public sealed class ValidateStage(DataplaneCounters counters, SocketSet sockets, HostInterface host)
{
    public int Mtu { get; set; } = 1500;

    /// <summary>Checks the packets from index <paramref name="first"/> on (those the scheduler took from pipes).</summary>
    public void Run(PacketBatch batch, int first)
    {
        for (int i = first; i < batch.Count; i++)
        {
            var socket = sockets[batch.SocketSlot(i)];
            var frame = batch.Frame(i);
            // A provisional Ethernet header lets the one parser check the copy; the neighbour stage writes the real one.
            EthernetHeader.At(frame).EtherType = frame.Length > EthernetHeader.Size && frame[EthernetHeader.Size] >> 4 == 6 ? EtherTypes.IPv6 : EtherTypes.IPv4;
            var reason = Check(frame, socket, ref batch.Parsed(i));
            if (reason != DropReason.None)
            {
                socket.Counters.Drop(reason);
                counters.Drop(reason);
                batch.MarkDone(i);
            }
        }
    }

    private DropReason Check(ReadOnlySpan<byte> frame, PipeSocket socket, ref ParsedPacket packet)
    {
        if (frame.Length - EthernetHeader.Size > Mtu)
        {
            return DropReason.TxTooBig;
        }
        // An application's IPv6 carries no extension headers: those an application may set on Linux need privilege.
        if (PacketParser.Parse(frame, out packet) != ParseError.None || packet.IpVersion == 0 || packet.IsFragment
            || packet.PacketEnd != frame.Length || (packet.IpVersion == 6 && packet.TransportOffset != packet.NetworkOffset + Ipv6Header.Size))
        {
            return DropReason.TxMalformed;
        }
        if (packet.Protocol != socket.Protocol || !socket.MaySendFrom(packet.Source, host) || packet.SourcePort != socket.LocalPort)
        {
            return DropReason.TxSpoofedSource;
        }
        return DropReason.None;
    }
}
