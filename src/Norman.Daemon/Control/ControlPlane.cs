using Norman.Core.Protocol;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Control;

/// <summary>
/// The kernel's half of normand: it alone decides who may open which socket, creates the shared memory, tells
/// the dataplane what to serve and releases everything a departed application held.
/// Each operation (<see cref="Operations"/>) takes the caller's kernel-given identity and a request, and fills a
/// response (and names the fds to pass); the families of operations live in their own files.
/// </summary>
public sealed partial class ControlPlane(Engine engine, SocketTable sockets, DaemonInfo info, int defaultSlotCount, ILogSink log,
    PolicyStore policy, AppNames appNames, int? adminGroup = null)
{
    public SocketTable Sockets => sockets;

    /// <summary>The daemon's descriptors that ordinary users' connections, sockets and captures may hold (the rest are root's).</summary>
    public DescriptorReserve Descriptors { get; init; } = new(int.MaxValue, 0);

    /// <summary>Sockets' memory made ahead of their binds; null: each bind makes its own.</summary>
    public PipeMemoryPool? Pool { get; init; }

    /// <summary>The users' ready maps, where applications mark the pipes they publish into; null: no socket gets a bit.</summary>
    public ReadyBitmaps? ReadyMaps { get; init; }

    /// <summary>The QoS classes `norman qos` shows and changes.</summary>
    public Qos.QosStore? Qos { get; init; }

    /// <summary>
    /// Root, or a member of the admin group, as the kernel told them at connect (see <see cref="PeerIdentity"/>). A
    /// non-root process's capabilities do not count: the kernel does not record them at connect, and what /proc says
    /// later is whatever the pid runs by then.
    /// </summary>
    public bool IsAdministrator(PeerIdentity caller) => caller.IsRoot || (adminGroup is { } group && caller.InGroup(group));

    private void RequireAdministrator(PeerIdentity caller, string what)
    {
        if (!IsAdministrator(caller))
        {
            throw new ControlException(ControlProtocol.Errors.NotPermitted,
                $"Operation not permitted: {what} needs root" +
                (adminGroup is { } g ? $" or membership of group {g}" : " (or the group the daemon's --admin-group names)") +
                $", and {caller.ProcessName} connected as uid {caller.Uid}. Run it with sudo.");
        }
    }

    /// <summary>
    /// Answers one request: the operation looked up in <see cref="Operations"/>, its privilege checked against the
    /// caller's connect-time identity, then its handler run; the answer and the descriptors to pass with it.
    /// </summary>
    public async Task<(ControlResponse Response, int[] Fds)> HandleAsync(ControlSession session, ControlRequest request)
    {
        if (request.Version != ControlProtocol.Version)
        {
            throw new ControlException(ControlProtocol.Errors.BadVersion,
                $"This daemon speaks control protocol version {ControlProtocol.Version}, the caller {request.Version}: use a client library and daemon of the same Norman release.");
        }
        if (!Operations.TryGetValue(request.Op ?? "", out var operation))
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument,
                $"Unknown operation '{request.Op}'. Known: {string.Join(", ", Operations.Keys)}.");
        }
        if (operation.Needs == Privilege.Administrator)
        {
            RequireAdministrator(session.Identity, operation.What);
        }
        var response = new ControlResponse { Id = request.Id, Ok = true };
        int[] fds = await operation.Handle(this, session, request, response);
        return (response, fds);
    }

    private static readonly Task<int[]> NoDescriptors = Task.FromResult<int[]>([]);

    private Task<int[]> OnHello(ControlSession session, ControlRequest request, ControlResponse response)
    {
        response.Daemon = info;
        return NoDescriptors;
    }
}
