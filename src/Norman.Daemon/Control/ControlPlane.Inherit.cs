using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Control;

/// <summary>
/// A TCP listener inherited across fork: the child's own stack cannot serve the parent's listener (its state is in the
/// parent's runtime), so the child asks for a listener of its own on the same port, in a group with the parent's, as
/// SO_REUSEPORT listeners are; the parent's then takes no new connections (a server's master forks workers that
/// accept), those it has staying with it. Possession is the authority, as on Linux, where an inherited descriptor works
/// whoever the child has become (nginx's workers drop root): the request carries a descriptor only holders of the
/// listener have (its doorbell, or the descriptor its program holds it by, named at listen: listener-holder), and the
/// daemon checks it is the same open file as its own copy (kcmp). The connections the listener's stack made and did
/// not accept go to the joiner (queue-handover), so a master that never accepts leaves none waiting.
/// </summary>
public sealed partial class ControlPlane
{
    /// <summary>A listener's application names the descriptor its program holds for it (<see cref="NormanSocket.Holder"/>).</summary>
    private Task<int[]> OnListenerHolder(ControlSession session, ControlRequest request, ControlResponse response)
    {
        int fd = session.TakeDescriptor();
        if (fd < 0)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, "listener-holder needs the listener's descriptor passed with the request (SCM_RIGHTS).");
        }
        NormanSocket socket;
        try
        {
            socket = OwnedSocket(session, request);
            if (socket.Pipe.Protocol != IpProtocols.Tcp || socket.RemotePort != 0)
            {
                throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"Socket {socket.Id} is not a TCP listener.");
            }
        }
        catch
        {
            Libc.Close(fd);
            throw;
        }
        bool administrator = IsAdministrator(session.Identity);
        bool replacing = socket.Holder >= 0;
        if (!replacing && !Descriptors.TryTake(1, administrator))
        {
            Libc.Close(fd);
            throw new ControlException(ControlProtocol.Errors.TooManySockets, "Cannot keep the listener's descriptor: " + Descriptors.Refusal(session.Identity.Uid, administrator));
        }
        if (!socket.NameHolder(fd) && !replacing)
        {
            Descriptors.Return(1, administrator);
        }
        return NoDescriptors;
    }

    private async Task<int[]> OnInherit(ControlSession session, ControlRequest request, ControlResponse response)
    {
        int proof = session.TakeDescriptor();
        if (proof < 0)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                "inherit needs the inherited listener's descriptor (its doorbell, or the one its program holds) passed with the request (SCM_RIGHTS).");
        }
        NormanSocket parent;
        try
        {
            parent = sockets.Snapshot().FirstOrDefault(s => s.Pipe.Protocol == IpProtocols.Tcp && s.RemotePort == 0
                    && ((s.Holder >= 0 && Libc.SameFile(s.Holder, proof)) || Libc.SameFile(s.Doorbell.Fd, proof)))
                ?? throw new ControlException(ControlProtocol.Errors.NotPermitted,
                    "The descriptor passed is no Norman TCP listener's: only a process that holds a listener (it inherited it) may join it.");
        }
        finally
        {
            Libc.Close(proof);
        }
        var identity = session.Identity;
        var socket = JoinPort(session, parent, "Cannot join the listener: ");
        Serve(session, socket); // joins the port's group: the lookup makes one with the parent's listener
        engine.Post(new StopListeningCommand(parent.Pipe));
        // The program its process exec'd may join before the daemon has seen the old program's connection close (that
        // release runs on the pool, and a loaded machine runs it late): a listener marked to be kept is its all the same.
        bool waited = parent.Owner.Pid == identity.Pid && StopWaitingForExec(parent);
        bool execing = !waited && parent.Owner.Pid == identity.Pid && parent.KeptAcrossExec;
        if (waited || execing)
        {
            // The program its process exec'd holds it now, as its own, with the connections made and not accepted before.
            response.HandedOver = parent.HandedOver;
            parent.HandedOver = null;
            parent.KeptAcrossExec = false; // not yet released: its old connection's release closes it, as any of its sockets
            if (waited || StopWaitingForExec(parent)) // (or that release ran meanwhile and kept it)
            {
                session.Finishing(CloseAsync(null, parent));
            }
        }
        else if (!IsWaitingForExec(parent) && await QueueOfAsync(parent) is { Count: > 0 } handed)
        {
            // A master's stack had made connections nobody accepted (its workers do): the joiner takes them up.
            response.HandedOver = handed;
        }
        if (response.HandedOver is { Count: > 0 } taken)
        {
            // Their segments go to the joiner, not to the group's first member (the listener they were made on).
            engine.Post(new PinConnectionsCommand(socket.Pipe, [.. taken.Select(c => new FlowKey(IpProtocols.Tcp, ParseAddress(c.LocalAddress),
                parent.LocalPort, ParseAddress(c.RemoteAddress), (ushort)c.RemotePort))]));
        }
        log.Info($"{identity.ProcessName} (pid {identity.Pid}) joined the TCP listener on port {parent.LocalPort} of " +
            $"{parent.Owner.ProcessName} (pid {parent.Owner.Pid}), which takes no new connections now" +
            (response.HandedOver is { Count: > 0 } given ? $" and handed over {given.Count} it had not accepted" : ""));
        return Granted(session, socket, response);
    }

    /// <summary>
    /// A TCP socket of the caller's on <paramref name="parent"/>'s port, in its reuseport group (made with it if need
    /// be), of its geometry: what a process that inherited the listener or one of its connections gets. Not yet served.
    /// </summary>
    private NormanSocket JoinPort(ControlSession session, NormanSocket parent, string refusal)
    {
        var identity = session.Identity;
        bool ordinary = !IsAdministrator(identity);
        if (!Descriptors.TryTake(DescriptorsPerSocket, administrator: !ordinary))
        {
            throw new ControlException(ControlProtocol.Errors.TooManySockets, refusal + Descriptors.Refusal(identity.Uid, !ordinary));
        }
        try
        {
            return sockets.Bind(identity, !ordinary, IpProtocols.Tcp, parent.LocalAddress, parent.LocalPort,
                PipeLayout.SocketRegionBytes(parent.SlotCount, PipeLayout.DefaultSlotSize, tcp: true),
                (id, port) => MakeSocket(id, port, identity, IpProtocols.Tcp, parent.LocalAddress, parent.SlotCount, parent.Pipe.V6Only,
                    reusePort: true, kept: null),
                v6Only: parent.Pipe.V6Only, reusePort: true, joining: parent);
        }
        catch
        {
            Descriptors.Return(DescriptorsPerSocket, administrator: !ordinary);
            throw;
        }
    }

    /// <summary>How long a joiner waits for the listener's stack to hand over its queue (it looks at least every 100 ms).</summary>
    public static readonly TimeSpan QueueHandOverWait = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The connections <paramref name="parent"/>'s stack made and its application did not accept, which it hands over
    /// when told that a process joined it (queue-handover); null if it does not within <see cref="QueueHandOverWait"/>.
    /// </summary>
    private async Task<List<HandedOverConnection>?> QueueOfAsync(NormanSocket parent)
    {
        await parent.JoinGate.WaitAsync();
        try
        {
            var wanted = new TaskCompletionSource<List<HandedOverConnection>?>(TaskCreationOptions.RunContinuationsAsynchronously);
            parent.QueueWanted = wanted;
            if (!parent.AddJoined())
            {
                return null;
            }
            parent.Wakeup.Signal();
            bool answered = await Task.WhenAny(wanted.Task, Task.Delay(QueueHandOverWait)) == wanted.Task;
            parent.QueueWanted = null;
            return answered ? wanted.Task.Result : null;
        }
        finally
        {
            parent.JoinGate.Release();
        }
    }

    /// <summary>A listener's stack hands over its queue to the process that joined it (<see cref="QueueOfAsync"/>).</summary>
    private Task<int[]> OnQueueHandOver(ControlSession session, ControlRequest request, ControlResponse response)
    {
        var socket = OwnedSocket(session, request);
        if (request.HandedOver is { Count: > HandedOverConnection.MaxConnections })
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"At most {HandedOverConnection.MaxConnections} connections are handed over, not {request.HandedOver.Count}.");
        }
        bool taken = socket.QueueWanted?.TrySetResult(request.HandedOver) == true;
        if (!taken && request.HandedOver is { Count: > 0 } lost)
        {
            log.Warn($"{session.Who} handed over {lost.Count} connection(s) of port {socket.LocalPort} after its joiner stopped waiting: they are lost");
        }
        return NoDescriptors;
    }
}
