using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using Norman.Core.Packets;

namespace Norman.Client.Tcp;

/// <summary>
/// Initial sequence numbers as RFC 6528 has them: a keyed hash of the connection's four-tuple, secret to this process,
/// plus a clock that ticks every 64 ns (as Linux's secure_tcp_seq). A new connection on the same four-tuple starts
/// ahead of the old one's numbers, and an off-path attacker cannot guess where any connection starts.
/// </summary>
internal static class InitialSequence
{
    private static readonly byte[] Secret = RandomNumberGenerator.GetBytes(32);

    public static uint For(NetAddress local, ushort localPort, NetAddress remote, ushort remotePort, long now)
    {
        Span<byte> tuple = stackalloc byte[36];
        local.WriteV6(tuple);
        remote.WriteV6(tuple[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(tuple[32..], localPort);
        BinaryPrimitives.WriteUInt16BigEndian(tuple[34..], remotePort);
        Span<byte> hash = stackalloc byte[32];
        HMACSHA256.HashData(Secret, tuple, hash);
        long nanoseconds = (long)(now * (1_000_000_000.0 / Stopwatch.Frequency));
        return BinaryPrimitives.ReadUInt32LittleEndian(hash) + (uint)(nanoseconds >> 6);
    }
}
