using Norman.Core.Packets;

namespace Norman.Daemon.Dataplane;

/// <summary>
/// A change the control plane asks of the dataplane. Commands queue up and are applied by the dataplane thread
/// between batches, so the dataplane's tables need no lock; <see cref="Applied"/> completes once it is in force.
/// </summary>
public abstract class DataplaneCommand
{
    private readonly TaskCompletionSource _applied = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Applied => _applied.Task;

    internal void Complete() => _applied.TrySetResult();

    internal void Fail(Exception error) => _applied.TrySetException(error);
}

/// <summary>Start serving a socket: its flow key goes into the flow table.</summary>
public sealed class AddSocketCommand(PipeSocket socket) : DataplaneCommand
{
    public PipeSocket Socket { get; } = socket;
}

/// <summary>Stop serving a socket; once applied, its shared memory may be unmapped.</summary>
public sealed class RemoveSocketCommand(PipeSocket socket) : DataplaneCommand
{
    public PipeSocket Socket { get; } = socket;
}

/// <summary>
/// Connections another listener of the group handed over to <paramref name="socket"/> (a worker that joined its
/// master's): their segments go to it from now on, whatever member they were pinned to, or the group's first.
/// </summary>
public sealed class PinConnectionsCommand(PipeSocket socket, IReadOnlyList<FlowKey> connections) : DataplaneCommand
{
    public PipeSocket Socket { get; } = socket;
    public IReadOnlyList<FlowKey> Connections { get; } = connections;
}

/// <summary>A TCP listener stops listening: in a reuseport group, no new connections go to it; its own stay with it.</summary>
public sealed class StopListeningCommand(PipeSocket socket) : DataplaneCommand
{
    public PipeSocket Socket { get; } = socket;
}

/// <summary>Connect a UDP socket: it now receives only from the remote, under its 5-tuple.</summary>
public sealed class ConnectSocketCommand(PipeSocket socket, NetAddress localAddress, NetAddress remoteAddress, ushort remotePort) : DataplaneCommand
{
    public PipeSocket Socket { get; } = socket;
    public NetAddress LocalAddress { get; } = localAddress;
    public NetAddress RemoteAddress { get; } = remoteAddress;
    public ushort RemotePort { get; } = remotePort;
}

/// <summary>Add a permanent neighbour entry (a static ARP entry).</summary>
public sealed class AddNeighbourCommand(NetAddress address, MacAddress mac) : DataplaneCommand
{
    public NetAddress Address { get; } = address;
    public MacAddress Mac { get; } = mac;
}

/// <summary>Start feeding a capture tap.</summary>
public sealed class AddTapCommand(Norman.Daemon.Capture.CaptureTap tap) : DataplaneCommand
{
    public Norman.Daemon.Capture.CaptureTap Tap { get; } = tap;
}

/// <summary>Stop feeding a capture tap; once applied, its memory may be unmapped.</summary>
public sealed class RemoveTapCommand(Norman.Daemon.Capture.CaptureTap tap) : DataplaneCommand
{
    public Norman.Daemon.Capture.CaptureTap Tap { get; } = tap;
}

/// <summary>
/// List connection tracking's live flows (`norman conntrack`). The dataplane walks the table a few thousand slots a
/// breath, between batches, and completes the command when it has walked it all.
/// </summary>
public sealed class ListFlowsCommand : DataplaneCommand
{
    public List<TrackedFlow> Flows { get; } = new();
    internal int NextSlot { get; set; }
}
