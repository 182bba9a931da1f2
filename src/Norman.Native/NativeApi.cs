using System.Net.Sockets;
using System.Runtime.InteropServices;
using Norman.Client;
using Norman.Core.Packets;

namespace Norman.Native;

/// <summary>
/// The C API (include/norman.h): each export decodes its arguments, calls <see cref="NativeSocket"/>, and turns any
/// failure into -1 with errno (<see cref="NativeError"/>). Nothing else happens here.
/// </summary>
internal static unsafe class NativeApi
{
    private const int AfInet = 2, AfInet6 = 10;
    private const int SockStream = 1, SockDgram = 2, SockNonBlock = 0x800, SockCloexec = 0x80000;
    private const int IpProtoTcp = 6, IpProtoUdp = 17;
    private const int MsgPeek = 0x2, MsgTrunc = 0x20, MsgDontWait = 0x40, MsgNoSignal = 0x4000;

    [UnmanagedCallersOnly(EntryPoint = "norman_socket")]
    public static int Socket(int domain, int type, int protocol)
    {
        try
        {
            var family = domain switch
            {
                AfInet => AddressFamily.InterNetwork,
                AfInet6 => AddressFamily.InterNetworkV6,
                _ => throw new NormanException("EAFNOSUPPORT", $"Address family {domain} is not served by Norman: use AF_INET or AF_INET6."),
            };
            bool nonBlocking = (type & SockNonBlock) != 0;
            // SOCK_CLOEXEC is accepted: a handle is not a descriptor and never crosses exec.
            var socket = (type & ~(SockNonBlock | SockCloexec)) switch
            {
                SockDgram when protocol is 0 or IpProtoUdp => NativeSocket.Udp(family, nonBlocking),
                SockStream when protocol is 0 or IpProtoTcp => NativeSocket.Tcp(family, nonBlocking),
                SockDgram or SockStream => throw new NormanException("EPROTONOSUPPORT", $"Protocol {protocol} does not go with this socket type: use 0."),
                var other => throw new NormanException("ESOCKTNOSUPPORT", $"Socket type {other} is not served by Norman: use SOCK_DGRAM (UDP) or SOCK_STREAM (TCP)."),
            };
            return SocketHandles.Add(socket);
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_bind")]
    public static int Bind(int handle, byte* address, uint length)
    {
        try
        {
            SocketHandles.Get(handle).Bind(SocketAddresses.Read(address, length));
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_listen")]
    public static int Listen(int handle, int backlog)
    {
        try
        {
            SocketHandles.Get(handle).Listen(backlog);
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    /// <summary>A listening socket's doorbell descriptor: what a forked child passes to norman_inherit_listener.</summary>
    [UnmanagedCallersOnly(EntryPoint = "norman_listener_doorbell")]
    public static int ListenerDoorbell(int handle)
    {
        try
        {
            return SocketHandles.Get(handle).ListenerDoorbell;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    /// <summary>
    /// Where this copy of the library runs in a namespace of its own (dlmopen), the program's libc's __errno_location:
    /// failures set errno there too, where the program reads it.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "norman_use_errno")]
    public static void UseErrno(delegate* unmanaged<int*> location) => NativeError.UseProgramErrno(location);

    /// <summary>
    /// Before exec: keeps a listening socket (keep 1) for the program the process becomes, which joins it with
    /// norman_inherit_listener and its readiness descriptor, passed on without close-on-exec; keep 0 takes that back (the exec failed).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "norman_keep_across_exec")]
    public static int KeepAcrossExec(int handle, int keep)
    {
        try
        {
            SocketHandles.Get(handle).KeepAcrossExec(keep != 0);
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    /// <summary>
    /// In a forked child, through its own copy of this library: a listener on the port of the TCP listener it inherited
    /// (proved by its doorbell or its readiness descriptor); new connections come to it, none to the inherited one.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "norman_inherit_listener")]
    public static int InheritListener(int domain, int proof, int nonBlocking)
    {
        try
        {
            var family = domain == AfInet6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
            return SocketHandles.Add(NativeSocket.InheritListener(family, proof, nonBlocking != 0));
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    /// <summary>
    /// In a forked child, through its own copy of this library: the TCP connection it inherited at descriptor
    /// <paramref name="proof"/>, which its parent closed (norman_close_for_children), taken up as its own.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "norman_claim_connection")]
    public static int ClaimConnection(int proof)
    {
        try
        {
            return SocketHandles.Add(NativeSocket.ClaimConnection(proof));
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    /// <summary>
    /// Closes a TCP connection the process forked with while children that may hold it live (<paramref name="children"/>:
    /// <paramref name="count"/> pidfds, which the library takes and closes): kept for them, as Linux keeps a connection
    /// while any descriptor for it is open, until one claims it or none holds it any more. 0: kept and the handle closed;
    /// -1: not kept (not an accepted connection, or the daemon refused) and the handle still open: close it with norman_close.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "norman_close_for_children")]
    public static int CloseForChildren(int handle, int* children, int count)
    {
        var pidfds = new int[Math.Clamp(count, 0, 64)];
        for (int i = 0; i < pidfds.Length; i++)
        {
            pidfds[i] = children[i];
        }
        try
        {
            if (!SocketHandles.Get(handle).CloseForChildren(pidfds))
            {
                return -1;
            }
            SocketHandles.Remove(handle);
            return 0;
        }
        catch (Exception error)
        {
            Array.ForEach(pidfds, child => Core.Shm.Libc.Close(child));
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_accept")]
    public static int Accept(int handle, byte* address, uint* length)
    {
        try
        {
            if (SocketHandles.Get(handle).Accept() is not { } accepted)
            {
                return NativeError.WouldBlock();
            }
            try
            {
                SocketAddresses.Write(accepted.RemoteEndPoint, accepted.Family, address, length);
            }
            catch
            {
                accepted.Dispose();
                throw;
            }
            return SocketHandles.Add(accepted);
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_connect")]
    public static int Connect(int handle, byte* address, uint length)
    {
        try
        {
            SocketHandles.Get(handle).Connect(SocketAddresses.Read(address, length));
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_send")]
    public static nint Send(int handle, byte* buffer, nuint length, int flags)
    {
        try
        {
            return Result(SocketHandles.Get(handle).Send(Span(buffer, length), Waits(flags, 0), destination: null));
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_sendto")]
    public static nint SendTo(int handle, byte* buffer, nuint length, int flags, byte* destination, uint destinationLength)
    {
        try
        {
            var to = destination is null ? null : SocketAddresses.Read(destination, destinationLength);
            return Result(SocketHandles.Get(handle).Send(Span(buffer, length), Waits(flags, 0), to));
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_recv")]
    public static nint Recv(int handle, byte* buffer, nuint length, int flags)
    {
        try
        {
            bool wait = Waits(flags, MsgPeek | MsgTrunc);
            var socket = SocketHandles.Get(handle);
            if ((flags & MsgTrunc) != 0 && socket.IsTcp)
            {
                return Result(socket.Discard(DiscardLength(length), wait, (flags & MsgPeek) != 0)); // the buffer may be NULL
            }
            return Result(socket.Receive(Span(buffer, length), wait, (flags & MsgPeek) != 0, (flags & MsgTrunc) != 0, out _));
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_recvfrom")]
    public static nint RecvFrom(int handle, byte* buffer, nuint length, int flags, byte* source, uint* sourceLength)
    {
        try
        {
            bool wait = Waits(flags, MsgPeek | MsgTrunc);
            var socket = SocketHandles.Get(handle);
            (NetAddress Address, ushort Port)? from = null;
            int received = (flags & MsgTrunc) != 0 && socket.IsTcp
                ? socket.Discard(DiscardLength(length), wait, (flags & MsgPeek) != 0)
                : socket.Receive(Span(buffer, length), wait, (flags & MsgPeek) != 0, (flags & MsgTrunc) != 0, out from);
            if (received == NativeSocket.WouldBlock)
            {
                return NativeError.WouldBlock();
            }
            if (from is { } sender)
            {
                SocketAddresses.Write(sender.Address, sender.Port, scopeId: 0, socket.Family, source, sourceLength);
            }
            else if (source is not null && sourceLength is not null)
            {
                *sourceLength = 0; // a stream socket names no source, as Linux's recvfrom on TCP
            }
            return received;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_shutdown")]
    public static int Shutdown(int handle, int how)
    {
        try
        {
            SocketHandles.Get(handle).Shutdown(how);
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_getsockname")]
    public static int GetSockName(int handle, byte* address, uint* length)
    {
        try
        {
            var socket = SocketHandles.Get(handle);
            SocketAddresses.Write(socket.LocalEndPoint, socket.Family, address, length);
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_getpeername")]
    public static int GetPeerName(int handle, byte* address, uint* length)
    {
        try
        {
            var socket = SocketHandles.Get(handle);
            SocketAddresses.Write(socket.RemoteEndPoint, socket.Family, address, length);
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_close")]
    public static int Close(int handle)
    {
        try
        {
            SocketHandles.Remove(handle).Dispose();
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    private const int SolSocket = 1, SoReuseAddr = 2, SoReusePort = 15, IpProtoIpv6 = 41, Ipv6V6Only = 26;

    /// <summary>The options Norman keeps (SO_REUSEADDR, IPV6_V6ONLY, before bind); any other is accepted and has no effect.</summary>
    [UnmanagedCallersOnly(EntryPoint = "norman_setsockopt")]
    public static int SetSockOpt(int handle, int level, int name, byte* value, uint length)
    {
        try
        {
            var socket = SocketHandles.Get(handle);
            bool on = length >= sizeof(int) && value is not null && *(int*)value != 0;
            switch ((level, name))
            {
                case (SolSocket, SoReuseAddr):
                    socket.ReuseAddress = on;
                    break;
                case (SolSocket, SoReusePort):
                    socket.ReusePort = on;
                    break;
                case (IpProtoIpv6, Ipv6V6Only):
                    socket.V6Only = on;
                    break;
            }
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_readiness_fd")]
    public static int ReadinessFd(int handle) => Ask(handle, static socket => socket.ReadinessDescriptor());

    [UnmanagedCallersOnly(EntryPoint = "norman_wakeup_fd")]
    public static int WakeupFd(int handle) => Ask(handle, static socket => socket.DaemonWakeupDescriptor);

    [UnmanagedCallersOnly(EntryPoint = "norman_set_nonblocking")]
    public static int SetNonBlocking(int handle, int nonBlocking)
    {
        try
        {
            SocketHandles.Get(handle).NonBlocking = nonBlocking != 0;
            return 0;
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_readable_bytes")]
    public static int ReadableBytes(int handle) => Ask(handle, static socket => socket.ReadableBytes());

    [UnmanagedCallersOnly(EntryPoint = "norman_socket_error")]
    public static int SocketError(int handle) => Ask(handle, static socket => socket.TakeSocketError());

    /// <summary>A question to one socket whose answer is a number: the failure, if any, as errno and -1 (no exception leaves).</summary>
    private static int Ask(int handle, Func<NativeSocket, int> question)
    {
        try
        {
            return question(SocketHandles.Get(handle));
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_flush")]
    public static int Flush(int timeoutMilliseconds)
    {
        try
        {
            return NativeSocket.Flush(TimeSpan.FromMilliseconds(Math.Max(0, timeoutMilliseconds)));
        }
        catch (Exception error)
        {
            return NativeError.Fail(error);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "norman_last_error")]
    public static byte* LastError() => NativeError.LastMessage();

    private static nint Result(int transferred) => transferred == NativeSocket.WouldBlock ? NativeError.WouldBlock() : transferred;

    /// <summary>Whether a call with <paramref name="flags"/> may wait; flags beyond MSG_DONTWAIT, MSG_NOSIGNAL and <paramref name="alsoAllowed"/> are refused.</summary>
    private static bool Waits(int flags, int alsoAllowed)
    {
        int unsupported = flags & ~(MsgDontWait | MsgNoSignal | alsoAllowed);
        return unsupported == 0
            ? (flags & MsgDontWait) == 0
            : throw new NormanException("EOPNOTSUPP", $"Flags 0x{unsupported:x} are not supported by Norman sockets (MSG_DONTWAIT and MSG_NOSIGNAL are; MSG_PEEK and MSG_TRUNC on receive).");
    }

    /// <summary>The caller's buffer; lengths beyond what a span holds are refused rather than cut.</summary>
    private static int DiscardLength(nuint length) => (int)Math.Min(length, int.MaxValue);

    private static Span<byte> Span(byte* buffer, nuint length) =>
        length == 0 ? default
        : buffer is null ? throw new NormanException("EFAULT", "The buffer is NULL.")
        : length > int.MaxValue ? throw new NormanException("EMSGSIZE", $"A buffer of {length} bytes is more than one call takes (2 GiB).")
        : new Span<byte>(buffer, (int)length);
}
