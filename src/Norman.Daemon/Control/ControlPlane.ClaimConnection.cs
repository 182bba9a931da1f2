using Norman.Core.Packets;
using Norman.Core.Protocol;
using Norman.Core.Shm;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Control;

/// <summary>
/// A TCP connection inherited across fork: a server accepts, forks, and its child serves the connection while the
/// parent closes its copy and accepts the next (Python's ForkingTCPServer, socat's fork, inetd). On Linux the
/// connection lives while any process holds it. Here its state lives in the parent's stack, so the parent keeps it
/// when it closes it after a fork (while the children forked since live) and names it to the daemon with the
/// descriptor it held it by (connection-holder); a child that uses its copy claims it with that copy as proof
/// (claim-connection), as a worker joins an inherited listener. The daemon asks the parent's stack for the connection
/// (a word in the listener's header page), which writes it down and lets go of it (connection-handover), and the child
/// gets a socket of its own on the listener's port, in a group with it, that takes no new connections and to which
/// the connection's 4-tuple is pinned; its stack takes the connection up as it was.
/// </summary>
public sealed partial class ControlPlane
{
    /// <summary>How long a claim waits for the parent to close its copy (a child usually comes first) and to hand the connection over.</summary>
    public static readonly TimeSpan ClaimWait = TimeSpan.FromSeconds(2);

    /// <summary>A connection's holder was named: claims waiting for one look again.</summary>
    private TaskCompletionSource _holderNamed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private Task<int[]> OnConnectionHolder(ControlSession session, ControlRequest request, ControlResponse response)
    {
        int fd = session.TakeDescriptor();
        if (fd < 0)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, "connection-holder needs the connection's descriptor passed with the request (SCM_RIGHTS).");
        }
        NormanSocket socket;
        NetAddress remote;
        try
        {
            socket = OwnedSocket(session, request);
            if (socket.Pipe.Protocol != IpProtocols.Tcp || socket.RemotePort != 0)
            {
                throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                    $"Socket {socket.Id} is not a TCP listener: only a listener's connections are taken up by a forked child.");
            }
            if (request.RemotePort is not (> 0 and <= ushort.MaxValue) || !NetAddress.TryParse(request.RemoteAddress ?? "", out remote))
            {
                throw new ControlException(ControlProtocol.Errors.InvalidArgument, "connection-holder needs the connection's remoteAddress and remotePort.");
            }
        }
        catch
        {
            Libc.Close(fd);
            throw;
        }
        bool administrator = IsAdministrator(session.Identity);
        if (!Descriptors.TryTake(1, administrator))
        {
            Libc.Close(fd);
            throw new ControlException(ControlProtocol.Errors.TooManySockets, "Cannot keep the connection's descriptor: " + Descriptors.Refusal(session.Identity.Uid, administrator));
        }
        if (!socket.NameConnectionHolder(fd, remote, (ushort)request.RemotePort, out bool replaced) || replaced)
        {
            Descriptors.Return(1, administrator);
        }
        Interlocked.Exchange(ref _holderNamed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        return NoDescriptors;
    }

    private async Task<int[]> OnClaimConnection(ControlSession session, ControlRequest request, ControlResponse response)
    {
        int proof = session.TakeDescriptor();
        if (proof < 0)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, "claim-connection needs the inherited connection's descriptor passed with the request (SCM_RIGHTS).");
        }
        NormanSocket parent;
        NetAddress remote;
        ushort remotePort;
        try
        {
            (parent, remote, remotePort) = await NamedConnectionAsync(proof);
        }
        finally
        {
            Libc.Close(proof);
        }
        Descriptors.Return(1, IsAdministrator(parent.Owner)); // the holder's descriptor, closed when taken
        var handed = await ConnectionOfAsync(parent, remote, remotePort);
        if (handed.RemotePort != remotePort || !NetAddress.TryParse(handed.RemoteAddress, out var handedRemote) || handedRemote != remote)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"The listener's stack handed over another connection than {remote}:{remotePort}.");
        }

        var identity = session.Identity;
        var socket = JoinPort(session, parent, "Cannot take up the connection: ");
        Serve(session, socket); // in a group with the listener, taking no new connections: only this one, pinned to it
        engine.Post(new StopListeningCommand(socket.Pipe));
        engine.Post(new PinConnectionsCommand(socket.Pipe,
            [new FlowKey(IpProtocols.Tcp, ParseAddress(handed.LocalAddress), parent.LocalPort, remote, remotePort)]));
        response.HandedOver = [handed];
        log.Info($"{identity.ProcessName} (pid {identity.Pid}) took up the connection from {remote}:{remotePort} to port {parent.LocalPort} " +
            $"that {parent.Owner.ProcessName} (pid {parent.Owner.Pid}) forked it with");
        return Granted(session, socket, response);
    }

    /// <summary>
    /// The listener and connection whose named descriptor is the same file as <paramref name="proof"/>, no longer named;
    /// waits up to <see cref="ClaimWait"/> for the parent to close its copy and name it.
    /// </summary>
    private async Task<(NormanSocket Listener, NetAddress Remote, ushort Port)> NamedConnectionAsync(int proof)
    {
        var deadline = DateTime.UtcNow + ClaimWait;
        while (true)
        {
            var named = _holderNamed.Task;
            foreach (var socket in sockets.Snapshot())
            {
                if (socket.Pipe.Protocol == IpProtocols.Tcp && socket.RemotePort == 0 && socket.ConnectionHolderCount > 0
                    && socket.TakeConnectionHolder(proof) is { } connection)
                {
                    return (socket, connection.Remote, connection.Port);
                }
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || await Task.WhenAny(named, Task.Delay(left)) != named)
            {
                throw new ControlException(ControlProtocol.Errors.NotPermitted,
                    "The descriptor passed is no Norman TCP connection that the process it was inherited from closed: a connection is taken up " +
                    $"by a forked child once its parent closes its copy (within {ClaimWait.TotalSeconds:0} s of the child's first use); both cannot use it.");
            }
        }
    }

    /// <summary>Asks <paramref name="listener"/>'s stack for its connection to remote:port, written down; waits up to <see cref="ClaimWait"/>.</summary>
    private async Task<HandedOverConnection> ConnectionOfAsync(NormanSocket listener, NetAddress remote, ushort remotePort)
    {
        await listener.JoinGate.WaitAsync();
        try
        {
            var claim = listener.AskForConnection(remote, remotePort);
            if (claim is not null)
            {
                listener.Wakeup.Signal();
            }
            bool answered = claim is not null && await Task.WhenAny(claim.Answer.Task, Task.Delay(ClaimWait)) == claim.Answer.Task;
            listener.Claim = null;
            if (answered && claim!.Answer.Task.Result is { } handed)
            {
                return handed;
            }
            throw new ControlException(ControlProtocol.Errors.NotPermitted,
                $"The connection from {remote}:{remotePort} was not handed over by {listener.Owner.ProcessName} (pid {listener.Owner.Pid}): " +
                (answered ? "it has ended, or has bytes in flight (sent and not acknowledged)" : "its stack did not answer") + ".");
        }
        finally
        {
            listener.JoinGate.Release();
        }
    }

    /// <summary>A listener's stack answers the ask for one connection (<see cref="ConnectionOfAsync"/>).</summary>
    private Task<int[]> OnConnectionHandOver(ControlSession session, ControlRequest request, ControlResponse response)
    {
        var socket = OwnedSocket(session, request);
        if (request.HandedOver is { Count: > 1 })
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, "A connection-handover carries one connection at most.");
        }
        if (socket.Claim is not { } claim || request.Sequence != claim.Sequence)
        {
            if (request.HandedOver is [var lost])
            {
                log.Warn($"{session.Who} handed over its connection from {lost.RemoteAddress}:{lost.RemotePort} after its claimer stopped waiting: it is lost");
            }
            return NoDescriptors;
        }
        if (request.HandedOver is [var part] && !claim.Add(part))
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"A connection handed over carries at most {HandedOverConnection.MaxClaimedBytes} bytes received.");
        }
        if (request.More != true)
        {
            claim.Finish();
        }
        return NoDescriptors;
    }
}
