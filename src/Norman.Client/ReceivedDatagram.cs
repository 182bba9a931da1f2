using System.Net;
using Norman.Core.Packets;

namespace Norman.Client;

/// <summary>
/// A datagram still in its RX pipe slot: <see cref="Payload"/> points into shared memory and is valid until
/// <see cref="NormanUdpSocket.Release"/>. Zero copies between the wire's last copy and your code.
/// </summary>
public readonly ref struct ReceivedDatagram(ReadOnlySpan<byte> payload, NetAddress source, ushort sourcePort)
{
    public ReadOnlySpan<byte> Payload { get; } = payload;
    public NetAddress Source { get; } = source;
    public ushort SourcePort { get; } = sourcePort;

    public IPEndPoint SourceEndPoint => new(Source.ToIPAddress(), SourcePort);
}

/// <summary>A received datagram copied out of the pipe, for async and convenience callers.</summary>
public sealed record NormanDatagram(byte[] Payload, IPEndPoint Source);
