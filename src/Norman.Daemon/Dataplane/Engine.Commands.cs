using System.Collections.Concurrent;
using System.Diagnostics;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// The engine's cold side: commands from the control plane (sockets added, connected and removed, taps, static
/// neighbours, conntrack listings), applied on the dataplane thread between breaths, so that the hot path never
/// takes a lock or sees a half-made change. A closing socket drains its TX pipe first, as a kernel's send queue does;
/// a listing walks a few thousand conntrack slots a breath.
/// </summary>
public sealed partial class Engine
{
    /// <summary>How long a closed socket's TX pipe may keep draining before it is dropped with the socket.</summary>
    public const int CloseDrainMilliseconds = 200;

    private readonly ConcurrentQueue<DataplaneCommand> _commands = new();
    private readonly List<(RemoveSocketCommand Command, long Deadline)> _closing = new();
    /// <summary>The control plane's lock around <see cref="Post"/> and <see cref="Halt"/>: the dataplane thread never takes it.</summary>
    private readonly object _postGate = new();
    private bool _halted;

    /// <summary>
    /// Queues a command for the dataplane thread; await its <see cref="DataplaneCommand.Applied"/>. Once the engine
    /// is halted it is applied at once, so a socket closed during shutdown is still released.
    /// The lock is the control plane's only: the dataplane thread never takes it.
    /// </summary>
    public void Post(DataplaneCommand command)
    {
        lock (_postGate)
        {
            if (_halted)
            {
                ApplyOne(command);
                return;
            }
            _commands.Enqueue(command);
        }
        _sleeper?.Nudge();
    }

    private void ApplyCommands()
    {
        while (_commands.TryDequeue(out var command))
        {
            ApplyOne(command);
        }
    }

    private void ApplyOne(DataplaneCommand command)
    {
        try
        {
            if (Apply(command))
            {
                command.Complete();
            }
        }
        catch (Exception error)
        {
            command.Fail(error);
        }
    }

    /// <summary>Applies a command; false when it completes later (a closing socket still draining).</summary>
    private bool Apply(DataplaneCommand command)
    {
        switch (command)
        {
            case AddSocketCommand add:
                _sockets.Add(add.Socket);
                _scheduler.Reserve(Math.Max(_sockets.Count, add.Socket.Slot + 1)); // a reused slot may be above the count
                _scheduler.Forget(add.Socket.Slot);
                _lookup.Add(add.Socket.Key, add.Socket.Slot, add.Socket.DualStack, add.Socket.ReusePort);
                // Last: if the kernel refuses to watch its doorbell, the socket is still served (a sleeping dataplane
                // then finds its packets at its timer), and the failure reaches the control plane's log.
                _sleeper?.Watch(add.Socket);
                break;
            case StopListeningCommand stop when stop.Socket.Slot >= 0:
                _lookup.StopAccepting(stop.Socket.Key, stop.Socket.Slot);
                break;
            case PinConnectionsCommand pin when pin.Socket.Slot >= 0:
                foreach (var connection in pin.Connections)
                {
                    _lookup.Pin(connection, pin.Socket.Slot);
                }
                break;
            case RemoveSocketCommand remove when remove.Socket.Slot >= 0 && !_halted:
                // Nothing more is delivered to it; what it already sent still leaves, as a kernel's send queue
                // does on close. The command completes once its TX pipe is empty (or the drain time is up).
                _lookup.Remove(remove.Socket.Key, remove.Socket.DualStack, remove.Socket.Slot);
                _closing.Add((remove, Stopwatch.GetTimestamp() + Stopwatch.Frequency * CloseDrainMilliseconds / 1000));
                return false;
            case RemoveSocketCommand remove when remove.Socket.Slot >= 0:
                _lookup.Remove(remove.Socket.Key, remove.Socket.DualStack, remove.Socket.Slot);
                _sleeper?.Forget(remove.Socket);
                _sockets.Remove(remove.Socket);
                break;
            case AddTapCommand add:
                _taps = [.. _taps, add.Tap];
                _portTaps = _taps.Any(t => t.AtPort);
                break;
            case RemoveTapCommand remove:
                _taps = _taps.Where(t => t != remove.Tap).ToArray();
                _portTaps = _taps.Any(t => t.AtPort);
                break;
            case ListFlowsCommand list:
                _listings.Add(list);
                if (_halted)
                {
                    FinishListings(); // no breath will come to walk it
                }
                return false;
            case AddNeighbourCommand neighbour:
                Neighbours.AddPermanent(neighbour.Address, neighbour.Mac);
                break;
            case ConnectSocketCommand connect when connect.Socket.Slot >= 0:
                _lookup.Remove(connect.Socket.Key, connect.Socket.DualStack, connect.Socket.Slot);
                connect.Socket.LocalAddress = connect.LocalAddress;
                connect.Socket.RemoteAddress = connect.RemoteAddress;
                connect.Socket.RemotePort = connect.RemotePort;
                _lookup.Add(connect.Socket.Key, connect.Socket.Slot, connect.Socket.DualStack);
                break;
        }
        return true;
    }

    /// <summary>Slots of the conntrack table a breath walks for a listing: a full default table (131,072 slots) in 32 breaths.</summary>
    private const int ListingSlotsPerBreath = 4096;
    private readonly List<ListFlowsCommand> _listings = new();

    private void ContinueListings(long now)
    {
        for (int i = _listings.Count - 1; i >= 0; i--)
        {
            var list = _listings[i];
            list.NextSlot = Conntrack.List(list.NextSlot, ListingSlotsPerBreath, list.Flows, now);
            if (list.NextSlot < 0)
            {
                _listings.RemoveAt(i);
                list.Complete();
            }
        }
    }

    private void FinishListings()
    {
        while (_listings.Count > 0)
        {
            ContinueListings(Stopwatch.GetTimestamp());
        }
    }

    private void FinishClosing(long now)
    {
        for (int i = _closing.Count - 1; i >= 0; i--)
        {
            var (command, deadline) = _closing[i];
            if (command.Socket.Tx.Available() == 0 || now > deadline || _halted)
            {
                _sleeper?.Forget(command.Socket);
                _sockets.Remove(command.Socket);
                _closing.RemoveAt(i);
                command.Complete();
            }
        }
    }

    /// <summary>Called once the dataplane thread has stopped: applies what is queued, and every later command at once.</summary>
    public void Halt()
    {
        lock (_postGate)
        {
            _halted = true;
            ApplyCommands();
            FinishClosing(Stopwatch.GetTimestamp());
            FinishListings();
        }
    }
}
