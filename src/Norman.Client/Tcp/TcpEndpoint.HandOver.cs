using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;

namespace Norman.Client.Tcp;

/// <summary>
/// A listener's connections made and not yet accepted, handed to another stack: the program the process execs
/// (ControlPlane.Exec.cs in the daemon), or a process that joined the listener (a forked worker, whose master never
/// accepts). This stack writes them down and stops serving them, dropping their segments (not acknowledged, so their
/// senders send them again; at exec new SYNs too, which come again to the next program's listener); the other stack
/// takes them up into its accept queue. If the exec fails, they are taken back.
/// </summary>
internal sealed unsafe partial class TcpEndpoint
{
    /// <summary>About to exec: no segment is answered here any more (<see cref="OnPacket"/>), not even with a reset.</summary>
    private volatile bool _handingOver;
    private readonly List<TcpConnection> _handedOver = new();
    /// <summary>What was written down, given again when asked again (the program holds the listener at two descriptors).</summary>
    private List<HandedOverConnection> _written = new();
    private bool _listeningBeforeHandOver;

    /// <summary>
    /// The count of processes that joined this listener, as last seen (<see cref="PipeLayout.JoinedOffset"/>, which the
    /// daemon raises): at each rise the queue is handed over to the joiner (a master whose workers accept).
    /// </summary>
    private int _joinedSeen;
    /// <summary>Connections handed to a joiner: their segments, until the daemon sends them on, are dropped here, not reset.</summary>
    private readonly HashSet<(NetAddress, ushort)> _handedAway = new();

    private int* JoinedWord => (int*)(_pipes.Region.Address + PipeLayout.JoinedOffset);

    /// <summary>On the loop, each turn of a listener's: a process joined it, so its queue goes to that process.</summary>
    private void HandOverQueueIfJoined()
    {
        int joined = Volatile.Read(ref *JoinedWord);
        if (joined == _joinedSeen)
        {
            return;
        }
        _joinedSeen = joined;
        var handed = new List<HandedOverConnection>();
        int bytes = 0;
        while (_acceptQueue!.Reader.TryRead(out var connection))
        {
            if (!TryWriteDown(connection, handed, ref bytes))
            {
                _acceptQueue.Writer.TryWrite(connection); // stays here, behind the rest
                break;
            }
            HandAway(connection);
        }
        _control.Post(new ControlRequest { Op = ControlProtocol.Ops.QueueHandOver, SocketId = _pipes.SocketId, HandedOver = handed });
    }

    /// <summary>Runs <paramref name="chore"/> on the loop thread, which alone touches connections, and returns what it returns.</summary>
    private T RunOnLoop<T>(Func<T> chore)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _chores.Enqueue(() =>
        {
            try
            {
                done.SetResult(chore());
            }
            catch (Exception error)
            {
                done.SetException(error);
            }
        });
        _nudge.Signal();
        if (!done.Task.Wait(TimeSpan.FromSeconds(5)))
        {
            throw new NormanException("ETIMEDOUT", "The listener's protocol thread did not answer within 5 s.");
        }
        return done.Task.Result;
    }

    private void RunOnLoop(Action chore) => RunOnLoop(() => { chore(); return 0; });

    /// <summary>On the loop: the accept queue's connections written down and set aside (those that cannot be stay set aside, unserved).</summary>
    private List<HandedOverConnection> HandOver()
    {
        if (_handingOver)
        {
            return _written;
        }
        var handed = new List<HandedOverConnection>();
        _handingOver = true;
        _listeningBeforeHandOver = _listening;
        _listening = false;
        int bytes = 0;
        while (_acceptQueue!.Reader.TryRead(out var connection))
        {
            _handedOver.Add(connection);
            SetAside(connection);
            TryWriteDown(connection, handed, ref bytes);
        }
        _written = handed;
        return handed;
    }

    /// <summary>Writes a connection down into <paramref name="handed"/>, if it can be and the hand-over has room left (count, bytes).</summary>
    private static bool TryWriteDown(TcpConnection connection, List<HandedOverConnection> handed, ref int bytes)
    {
        if (handed.Count >= HandedOverConnection.MaxConnections || connection.HandOver() is not { } written
            || bytes + written.Received.Length > HandedOverConnection.MaxReceivedBytesInAll)
        {
            return false;
        }
        bytes += written.Received.Length;
        handed.Add(written);
        return true;
    }

    /// <summary>This stack no longer serves the connection: not its segments, not its timers.</summary>
    private void SetAside(TcpConnection connection)
    {
        _connections.Remove((connection.RemoteAddress, connection.RemotePort));
        _timed.Remove(connection);
    }

    /// <summary>Set aside for another process's stack: its segments, until the daemon sends them there, are dropped here, not reset.</summary>
    private void HandAway(TcpConnection connection)
    {
        SetAside(connection);
        if (_handedAway.Count >= 4096)
        {
            _handedAway.Clear();
        }
        _handedAway.Add((connection.RemoteAddress, connection.RemotePort));
    }

    /// <summary>On the loop: the exec failed, so the connections set aside are served and queued again.</summary>
    private void TakeBack()
    {
        if (!_handingOver)
        {
            return;
        }
        foreach (var connection in _handedOver)
        {
            _connections[(connection.RemoteAddress, connection.RemotePort)] = connection;
            if (connection.HasTimers)
            {
                _timed.Add(connection);
            }
            _acceptQueue!.Writer.TryWrite(connection);
        }
        _handedOver.Clear();
        _written = new();
        _listening = _listeningBeforeHandOver;
        _handingOver = false;
        ConnectionQueued?.Invoke();
    }

    /// <summary>Before the loop starts: a connection the program before exec handed over joins the accept queue, as it was there.</summary>
    private void TakeUp(HandedOverConnection handed)
    {
        TcpConnection connection;
        try
        {
            connection = TcpConnection.Resume(this, handed);
        }
        catch (FormatException)
        {
            return; // the daemon only passes on what the program before exec wrote: a stack of another release, most likely
        }
        var key = (connection.RemoteAddress, connection.RemotePort);
        if (_connections.TryAdd(key, connection))
        {
            _acceptQueue!.Writer.TryWrite(connection);
        }
    }
}
