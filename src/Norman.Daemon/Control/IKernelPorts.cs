namespace Norman.Daemon.Control;

/// <summary>
/// Ports Norman and the kernel's own stack hand out from one space, when they share an address (an xdp port with
/// --share-address): a port a Norman socket binds is reserved from the kernel's applications, and one they hold
/// cannot be bound through Norman.
/// </summary>
public interface IKernelPorts
{
    /// <summary>Reserves <paramref name="port"/> for a Norman socket; null when a kernel socket holds it. Disposing gives it back.</summary>
    IDisposable? TryReserve(byte protocol, ushort port);
}
