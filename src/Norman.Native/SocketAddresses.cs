using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Norman.Client;
using Norman.Core.Packets;

namespace Norman.Native;

/// <summary>
/// struct sockaddr_in and sockaddr_in6 to and from endpoints. The caller's memory is read once into a copy that is
/// then checked, and written no further than the length the caller gave, as the kernel treats a program's buffers.
/// </summary>
internal static unsafe class SocketAddresses
{
    private const ushort FamilyV4 = 2, FamilyV6 = 10;
    public const int SizeV4 = 16, SizeV6 = 28;

    public static IPEndPoint Read(byte* address, uint length)
    {
        if (address is null)
        {
            throw new NormanException("EFAULT", "The address is NULL.");
        }
        if (length < sizeof(ushort))
        {
            throw new NormanException("EINVAL", $"An address of {length} bytes is too short to hold its family.");
        }
        Span<byte> copy = stackalloc byte[SizeV6];
        copy.Clear();
        new ReadOnlySpan<byte>(address, (int)Math.Min(length, SizeV6)).CopyTo(copy);
        ushort family = BinaryPrimitives.ReadUInt16LittleEndian(copy);
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(copy[2..]);
        return family switch
        {
            FamilyV4 when length >= SizeV4 => new IPEndPoint(new IPAddress(copy.Slice(4, 4)), port),
            FamilyV6 when length >= SizeV6 => new IPEndPoint(new IPAddress(copy.Slice(8, 16), BinaryPrimitives.ReadUInt32LittleEndian(copy[24..])), port),
            FamilyV4 or FamilyV6 => throw new NormanException("EINVAL", $"An address of {length} bytes is too short for its family (sockaddr_in is {SizeV4}, sockaddr_in6 {SizeV6})."),
            _ => throw new NormanException("EAFNOSUPPORT", $"Address family {family} is not served by Norman: use AF_INET or AF_INET6."),
        };
    }

    /// <summary>
    /// Writes <paramref name="endPoint"/> as the socket's family gives it (an IPv4 peer of an IPv6 socket v4-mapped), at
    /// most <c>*length</c> bytes of it, and sets <c>*length</c> to its full size, as getsockname(2) and accept(2) do.
    /// A NULL <paramref name="address"/> asks for nothing.
    /// </summary>
    public static void Write(IPEndPoint endPoint, AddressFamily family, byte* address, uint* length) =>
        Write(NetAddress.From(endPoint.Address), (ushort)endPoint.Port,
            endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? (uint)endPoint.Address.ScopeId : 0, family, address, length);

    /// <summary>As <see cref="Write(IPEndPoint, AddressFamily, byte*, uint*)"/>, without making an endpoint: a datagram's source.</summary>
    public static void Write(NetAddress ip, ushort port, uint scopeId, AddressFamily family, byte* address, uint* length)
    {
        if (address is null)
        {
            return;
        }
        if (length is null)
        {
            throw new NormanException("EFAULT", "The address length pointer is NULL.");
        }
        Span<byte> bytes = stackalloc byte[SizeV6];
        bytes.Clear();
        BinaryPrimitives.WriteUInt16BigEndian(bytes[2..], port);
        int size;
        if (family == AddressFamily.InterNetwork)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes, FamilyV4);
            ip.WriteV4(bytes.Slice(4, 4));
            size = SizeV4;
        }
        else
        {
            // An IPv4 peer of an IPv6 socket is written v4-mapped, as Linux gives it.
            BinaryPrimitives.WriteUInt16LittleEndian(bytes, FamilyV6);
            ip.WriteV6(bytes.Slice(8, 16));
            BinaryPrimitives.WriteUInt32LittleEndian(bytes[24..], scopeId);
            size = SizeV6;
        }
        uint room = *length;
        bytes[..(int)Math.Min(room, (uint)size)].CopyTo(new Span<byte>(address, (int)Math.Min(room, (uint)size)));
        *length = (uint)size;
    }
}
