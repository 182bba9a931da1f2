using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Client.Tcp;

/// <summary>
/// A listener's connection that its process forked with: the program closes its copy and a child serves it (a forking
/// server), or the child never touches it (it forked to do something else). On Linux the connection lives while any
/// descriptor for it does. Here this stack keeps it, unserved by the program, while a child forked since it opened
/// lives (<see cref="KeepForChildren"/>); the daemon, asked by a child that uses its copy (claim-connection), raises a
/// word in this socket's header page, and this stack writes the connection down and lets go of it for the child's
/// stack to take up (<see cref="Claim"/>). When the children have all ended without it, it is closed as the program's
/// close would have closed it.
/// </summary>
internal sealed unsafe partial class TcpEndpoint
{
    /// <summary>Connections the program closed after forking, each with descriptors of the children (pidfds) that may hold it. Loop thread only.</summary>
    private readonly List<(TcpConnection Connection, int[] Children)> _keptForChildren = new();
    private int _connectionWantedSeen;

    private int* ConnectionWantedWord => (int*)(_pipes.Region.Address + PipeLayout.ConnectionWantedOffset);

    /// <summary>
    /// The program closed <paramref name="connection"/>, which the children behind <paramref name="children"/> (pidfds,
    /// now this endpoint's) may hold: it is named to the daemon with <paramref name="holder"/>, the descriptor the program
    /// held it by, and kept. False (pidfds closed) where it cannot be (not a listener's, or the daemon refused): close it.
    /// </summary>
    public bool KeepForChildren(TcpConnection connection, int[] children, int holder)
    {
        try
        {
            if (_acceptQueue is null)
            {
                throw new NormanException("EINVAL", "Only a listener's connections are kept for forked children.");
            }
            _control.Call(new ControlRequest
            {
                Op = ControlProtocol.Ops.ConnectionHolder, SocketId = _pipes.SocketId,
                RemoteAddress = connection.RemoteAddress.ToString(), RemotePort = connection.RemotePort,
            }, sentFds: [holder]);
        }
        catch (NormanException)
        {
            Array.ForEach(children, child => Libc.Close(child));
            return false;
        }
        _chores.Enqueue(() => _keptForChildren.Add((connection, children)));
        _nudge.Signal();
        return true;
    }

    /// <summary>On the loop, each turn of a listener's: the daemon asked for a connection (a child claims it), which is written down and let go of, or not there.</summary>
    private void HandOverConnectionIfWanted()
    {
        int asked = Volatile.Read(ref *ConnectionWantedWord);
        if (asked == _connectionWantedSeen)
        {
            return;
        }
        _connectionWantedSeen = asked;
        byte* header = _pipes.Region.Address;
        ushort port = (ushort)*(uint*)(header + PipeLayout.ConnectionWantedPortOffset);
        var remote = NetAddress.ReadV6(new ReadOnlySpan<byte>(header + PipeLayout.ConnectionWantedAddressOffset, 16));
        int at = _keptForChildren.FindIndex(kept => kept.Connection.RemotePort == port && kept.Connection.RemoteAddress == remote);
        var written = at < 0 ? null : _keptForChildren[at].Connection.HandOver(HandedOverConnection.MaxClaimedBytes);
        if (written is not null)
        {
            var (connection, children) = _keptForChildren[at];
            _keptForChildren.RemoveAt(at);
            SetAside(connection);
            if (_handedAway.Count >= 4096)
            {
                _handedAway.Clear();
            }
            _handedAway.Add((connection.RemoteAddress, connection.RemotePort));
            Array.ForEach(children, child => Libc.Close(child));
            Release(); // the program's hold, which the kept connection carried
        }
        // Its received bytes in parts, each request within an ordinary caller's bound; the daemon puts them together.
        var received = written?.Received ?? [];
        int sent = 0;
        do
        {
            int part = Math.Min(HandedOverConnection.PartBytes, received.Length - sent);
            var carrying = sent == 0 ? written : new HandedOverConnection { RemoteAddress = written!.RemoteAddress, RemotePort = written.RemotePort };
            if (carrying is not null)
            {
                carrying.Received = received[sent..(sent + part)];
            }
            sent += part;
            _control.Post(new ControlRequest
            {
                Op = ControlProtocol.Ops.ConnectionHandOver, SocketId = _pipes.SocketId, Sequence = asked,
                HandedOver = carrying is null ? [] : [carrying], More = sent < received.Length,
            });
        }
        while (sent < received.Length);
    }

    /// <summary>On the loop, now and then: a kept connection whose children have all ended is closed as the program's close would have.</summary>
    private void CloseConnectionsNoChildHolds()
    {
        for (int i = _keptForChildren.Count - 1; i >= 0; i--)
        {
            var (connection, children) = _keptForChildren[i];
            if (!children.All(Ended))
            {
                continue;
            }
            _keptForChildren.RemoveAt(i);
            Array.ForEach(children, child => Libc.Close(child));
            if (connection.HasUnreadData)
            {
                connection.Abort();
            }
            else
            {
                connection.ShutdownSend();
            }
            connection.Orphan();
            Release();
        }
    }

    private static bool Ended(int pidfd)
    {
        var ready = new Libc.PollFd { Fd = pidfd, Events = 1 }; // POLLIN: the process has ended
        return Libc.Poll(&ready, 1, 0) != 0;
    }

    /// <summary>
    /// A connection this process inherited across fork (<paramref name="proof"/>: its descriptor), on a socket of its
    /// own: the stack that served it in the parent writes it down, this endpoint takes it up, as it was.
    /// </summary>
    public static (TcpEndpoint Endpoint, TcpConnection Connection) Claim(string? controlSocketPath, int proof,
        TcpCongestionControl congestionControl = TcpCongestionControl.Cubic)
    {
        var control = ControlChannel.Share(controlSocketPath);
        SocketPipes pipes;
        HandedOverConnection handed;
        try
        {
            pipes = SocketPipes.Claim(control, proof, out handed);
        }
        catch
        {
            control.Release();
            throw;
        }
        var endpoint = new TcpEndpoint(control, pipes, backlog: 1, congestionControl, [handed]); // its loop owns them now
        if (!endpoint.TryAccept(out var connection))
        {
            endpoint.StopListening();
            throw new NormanException("EPROTO", "The connection handed over could not be taken up: a stack of another release?");
        }
        endpoint.Hold();
        endpoint.StopListening(); // it takes no connections of its own: the daemon sends it none
        return (endpoint, connection);
    }
}
