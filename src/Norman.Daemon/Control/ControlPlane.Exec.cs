using Norman.Core.Packets;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Daemon.Control;

/// <summary>
/// A TCP listener passed across exec: on Linux a listening socket without close-on-exec survives into the program a
/// process becomes (a supervisor that execs its server, socket activation, a server re-executing its new binary). Here
/// the connection closes at exec, and with it every socket it holds; a listener its process marked before exec
/// (keep-across-exec) waits instead, while that process lives, for the new program to join it (inherit, with the
/// listener's descriptor it inherited as the proof), and the connections its stack made and did not accept go to it. Waiting, it is a member of its port's group that takes no new connections, as a
/// forked worker's parent's is once the worker joins; it closes when its process ends, as the process's last
/// descriptor for it would. Its memory and descriptors still count as its user's.
/// </summary>
public sealed partial class ControlPlane
{
    /// <summary>Listeners whose connection closed at exec, each with a descriptor that becomes readable when its process ends.</summary>
    private readonly Dictionary<NormanSocket, int> _waitingForExec = new();
    private Timer? _execSweep;

    /// <summary>How often the listeners waiting for their process's next program are checked for a process that ended.</summary>
    public static readonly TimeSpan ExecSweepInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>Listeners waiting across an exec for their process's next program (for tests and listings).</summary>
    public int WaitingForExec
    {
        get
        {
            lock (_waitingForExec)
            {
                return _waitingForExec.Count;
            }
        }
    }

    private Task<int[]> OnKeepAcrossExec(ControlSession session, ControlRequest request, ControlResponse response)
    {
        var socket = OwnedSocket(session, request);
        if (socket.Pipe.Protocol != IpProtocols.Tcp || socket.RemotePort != 0)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"Socket {socket.Id} is not a TCP listener: only a listener is kept across exec (a connection's state lives in the program's stack).");
        }
        if (request.HandedOver is { Count: > HandedOverConnection.MaxConnections })
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"At most {HandedOverConnection.MaxConnections} connections are handed over across exec, not {request.HandedOver.Count}.");
        }
        socket.KeptAcrossExec = request.Keep != false;
        socket.HandedOver = socket.KeptAcrossExec ? request.HandedOver : null;
        return NoDescriptors;
    }

    /// <summary>
    /// A connection ended holding <paramref name="socket"/>, marked to be kept across exec: it waits for the process's
    /// next program if the process still lives (it exec'd), and closes otherwise. Whether it waits.
    /// </summary>
    internal bool WaitForExec(ControlSession session, NormanSocket socket)
    {
        int process = Libc.PidFdOpen(session.Identity.Pid);
        if (process < 0 || Ended(process))
        {
            if (process >= 0)
            {
                Libc.Close(process);
            }
            return false;
        }
        session.Disown(socket);
        lock (_waitingForExec)
        {
            _waitingForExec[socket] = process;
            _execSweep ??= new Timer(_ => _ = SweepWaitingForExecAsync(), null, ExecSweepInterval, ExecSweepInterval);
        }
        log.Info($"{session.Who} exec'd: its TCP listener on port {socket.LocalPort} waits for the program it became");
        return true;
    }

    /// <summary>Whether <paramref name="socket"/> waits across exec (its program is gone: no stack answers for it).</summary>
    private bool IsWaitingForExec(NormanSocket socket)
    {
        lock (_waitingForExec)
        {
            return _waitingForExec.ContainsKey(socket);
        }
    }

    /// <summary>Whether <paramref name="socket"/> waited across exec; it no longer does (its process's new program joined it).</summary>
    private bool StopWaitingForExec(NormanSocket socket)
    {
        lock (_waitingForExec)
        {
            if (!_waitingForExec.Remove(socket, out int process))
            {
                return false;
            }
            Libc.Close(process);
            return true;
        }
    }

    /// <summary>Closes the waiting listeners whose process has ended (every listener with <paramref name="all"/>: the daemon stops).</summary>
    public async Task SweepWaitingForExecAsync(bool all = false)
    {
        List<NormanSocket> ended = new();
        lock (_waitingForExec)
        {
            foreach (var (socket, process) in _waitingForExec)
            {
                if (all || Ended(process))
                {
                    ended.Add(socket);
                    Libc.Close(process);
                }
            }
            ended.ForEach(socket => _waitingForExec.Remove(socket));
            if (_waitingForExec.Count == 0)
            {
                _execSweep?.Dispose();
                _execSweep = null;
            }
        }
        foreach (var socket in ended)
        {
            try
            {
                await CloseAsync(null, socket);
            }
            catch (Exception error)
            {
                log.Warn($"closing the TCP listener on port {socket.LocalPort} that waited across exec failed: {error.Message}");
            }
        }
    }

    private static unsafe bool Ended(int process)
    {
        var ready = new Libc.PollFd { Fd = process, Events = 1 }; // POLLIN: the process has ended
        return Libc.Poll(&ready, 1, 0) != 0;
    }
}
