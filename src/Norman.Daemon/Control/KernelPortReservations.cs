using System.Net;
using System.Net.Sockets;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane.Ports.Xdp;

namespace Norman.Daemon.Control;

/// <summary>
/// The shared-address mode's ports, as Onload keeps them: each port a Norman socket holds is also bound by a kernel
/// socket of the daemon's (so the kernel hands it to no one else, and `ss` shows who holds it), and steered to Norman
/// by the XDP program's ports map, both within the bind's control call; closing undoes both, steering first.
/// The kernel socket is bound without SO_REUSEADDR, so no application's bind can share it, with or without its own.
/// </summary>
public sealed class KernelPortReservations(NetAddress address, XdpSteering steering) : IKernelPorts
{
    public IDisposable? TryReserve(byte protocol, ushort port)
    {
        bool tcp = protocol == IpProtocols.Tcp;
        var socket = new Socket(AddressFamily.InterNetwork, tcp ? SocketType.Stream : SocketType.Dgram, tcp ? ProtocolType.Tcp : ProtocolType.Udp);
        try
        {
            socket.Bind(new IPEndPoint(address.ToIPAddress(), port));
            steering.SetPort(protocol, port, open: true);
            return new Reservation(socket, steering, protocol, port);
        }
        catch (SocketException error) when (error.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            return null;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private sealed class Reservation(Socket socket, XdpSteering steering, byte protocol, ushort port) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }
            steering.SetPort(protocol, port, open: false);
            socket.Dispose();
        }
    }
}
