using System.Diagnostics;
using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Core.Shm;

namespace Norman.Client.Tcp;

/// <summary>
/// A listener's connection that its process forked with: the program closes its copy and a child serves it (a forking
/// server), or the child never touches it (it forked to do something else, or exec'd and the copy closed). On Linux
/// the connection lives while any descriptor for it does. Here this stack keeps it, unserved by the program, while a
/// child forked since it opened still has a descriptor for it (<see cref="KeepForChildren"/>; its /proc/PID/fd, looked
/// at on close and about every 100 ms); the daemon, asked by a child that uses its copy (claim-connection), raises a
/// word in this socket's header page, and this stack writes the connection down and lets go of it for the child's
/// stack to take up (<see cref="Claim"/>). When no child holds it any more, it is closed as the program's close would
/// have closed it.
/// </summary>
internal sealed unsafe partial class TcpEndpoint
{
    /// <summary>Connections the program closed after forking, each with descriptors of the children (pidfds) that may hold it. Loop thread only.</summary>
    private readonly List<(TcpConnection Connection, int[] Children, string Socket)> _keptForChildren = new();
    private int _connectionWantedSeen;
    /// <summary>An ask for a kept connection with bytes the peer has not acknowledged: tried each turn until it has (a round trip), answered empty after a second.</summary>
    private (int Asked, NetAddress Remote, ushort Port, long Until)? _askPending;

    private int* ConnectionWantedWord => (int*)(_pipes.Region.Address + PipeLayout.ConnectionWantedOffset);

    /// <summary>
    /// The program closed <paramref name="connection"/>, which the children behind <paramref name="children"/> (pidfds,
    /// now this endpoint's) may hold: it is kept, then named to the daemon with <paramref name="holder"/>, the descriptor
    /// the program held it by (kept first: a child's claim may come as soon as it is named). False (pidfds closed) where
    /// it cannot be (not a listener's, no child holds it, or the daemon refused): close it.
    /// </summary>
    public bool KeepForChildren(TcpConnection connection, int[] children, int holder)
    {
        string? socket = SocketOf(Environment.ProcessId, holder);
        if (_acceptQueue is null || socket is null || !AnyHolds(children, socket))
        {
            Array.ForEach(children, child => Libc.Close(child));
            return false;
        }
        var kept = (connection, children, socket);
        RunOnLoop(() => _keptForChildren.Add(kept));
        try
        {
            _control.Call(new ControlRequest
            {
                Op = ControlProtocol.Ops.ConnectionHolder, SocketId = _pipes.SocketId,
                RemoteAddress = connection.RemoteAddress.ToString(), RemotePort = connection.RemotePort,
            }, sentFds: [holder]);
            return true;
        }
        catch (NormanException)
        {
            RunOnLoop(() => _keptForChildren.Remove(kept));
            Array.ForEach(children, child => Libc.Close(child));
            return false;
        }
    }

    /// <summary>On the loop, each turn of a listener's: the daemon asked for a connection (a child claims it), which is written down and let go of, or not there.</summary>
    private void HandOverConnectionIfWanted()
    {
        int newest = Volatile.Read(ref *ConnectionWantedWord);
        if (newest != _connectionWantedSeen)
        {
            _connectionWantedSeen = newest;
            byte* header = _pipes.Region.Address;
            _askPending = (newest, NetAddress.ReadV6(new ReadOnlySpan<byte>(header + PipeLayout.ConnectionWantedAddressOffset, 16)),
                (ushort)*(uint*)(header + PipeLayout.ConnectionWantedPortOffset), Stopwatch.GetTimestamp() + Stopwatch.Frequency);
        }
        if (_askPending is not var (asked, remote, port, until))
        {
            return;
        }
        int at = _keptForChildren.FindIndex(kept => kept.Connection.RemotePort == port && kept.Connection.RemoteAddress == remote);
        var written = at < 0 ? null : _keptForChildren[at].Connection.HandOver(HandedOverConnection.MaxClaimedBytes);
        if (written is null && at >= 0 && _keptForChildren[at].Connection.HasUnacknowledgedBytes && Stopwatch.GetTimestamp() < until)
        {
            return; // what the program wrote before it closed is on its way: once acknowledged, the connection can go
        }
        _askPending = null;
        if (written is not null)
        {
            var (connection, children, _) = _keptForChildren[at];
            _keptForChildren.RemoveAt(at);
            HandAway(connection);
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

    /// <summary>On the loop, now and then: a kept connection no child holds any more is closed as the program's close would have.</summary>
    private void CloseConnectionsNoChildHolds()
    {
        for (int i = _keptForChildren.Count - 1; i >= 0; i--)
        {
            var (connection, children, socket) = _keptForChildren[i];
            if (AnyHolds(children, socket))
            {
                continue;
            }
            _keptForChildren.RemoveAt(i);
            Array.ForEach(children, child => Libc.Close(child));
            connection.CloseAsLastDescriptor();
            Release();
        }
    }

    /// <summary>
    /// Whether a process behind <paramref name="children"/> (pidfds) that still runs has a descriptor for
    /// <paramref name="socket"/> (as /proc shows it: "socket:[inode]"); one whose descriptors cannot be read is taken to.
    /// </summary>
    private static bool AnyHolds(int[] children, string socket)
    {
        foreach (int child in children)
        {
            var ready = new Libc.PollFd { Fd = child, Events = 1 }; // POLLIN: the process has ended
            if (Libc.Poll(&ready, 1, 0) != 0 || PidOf(child) is not { } pid)
            {
                continue;
            }
            try
            {
                foreach (var descriptor in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
                {
                    if (new FileInfo(descriptor).LinkTarget == socket)
                    {
                        return true;
                    }
                }
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException)
            {
                return Directory.Exists($"/proc/{pid}"); // gone meanwhile, or not ours to read: then it may hold it
            }
        }
        return false;
    }

    /// <summary>The process a pidfd stands for (its fdinfo's Pid line); null when it has ended or cannot be read.</summary>
    private static int? PidOf(int pidfd)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/self/fdinfo/{pidfd}"))
            {
                if (line.StartsWith("Pid:", StringComparison.Ordinal) && int.TryParse(line.AsSpan(4).Trim(), out int pid) && pid > 0)
                {
                    return pid;
                }
            }
        }
        catch (IOException)
        {
        }
        return null;
    }

    /// <summary>What /proc shows descriptor <paramref name="fd"/> of process <paramref name="pid"/> to be ("socket:[inode]"), or null.</summary>
    private static string? SocketOf(int pid, int fd)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
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
