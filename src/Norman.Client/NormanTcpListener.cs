using System.Net;
using Norman.Client.Tcp;
using Norman.Core.Pipes;

namespace Norman.Client;

/// <summary>
/// A listening TCP socket through a Norman daemon: <see cref="AcceptAsync"/> hands over connections whose
/// handshake completed. At most <c>backlog</c> connections wait (half-open ones included); a SYN beyond that is
/// dropped, as Linux drops it, so the client retries.
/// </summary>
public sealed class NormanTcpListener : IDisposable
{
    private readonly TcpEndpoint _endpoint;
    private int _disposed;

    /// <summary>
    /// Binds and listens (port 0 picks a free one) on the host's address or the wildcard; the accepted connections use
    /// <paramref name="congestionControl"/>: CUBIC (the default, as Linux's) or NewReno. On <c>::</c>,
    /// <paramref name="v6Only"/> (IPV6_V6ONLY) leaves IPv4 to another listener on the same port, as Redis and nginx bind them.
    /// With <paramref name="reusePort"/> (SO_REUSEPORT) it shares the port with this user's other listeners that set it
    /// too; each new connection goes to one of them and stays with it while it lives, whoever joins or leaves.
    /// </summary>
    public NormanTcpListener(IPEndPoint endPoint, string? controlSocketPath = null, int backlog = 4096, int? slotCount = null,
        TcpCongestionControl congestionControl = TcpCongestionControl.Cubic, bool v6Only = false, bool reusePort = false) =>
        _endpoint = TcpEndpoint.Listen(controlSocketPath, endPoint, backlog, slotCount, congestionControl, v6Only, reusePort);

    public NormanTcpListener(int port, string? controlSocketPath = null, int backlog = 4096)
        : this(new IPEndPoint(IPAddress.Any, port), controlSocketPath, backlog)
    {
    }

    private NormanTcpListener(TcpEndpoint endpoint) => _endpoint = endpoint;

    /// <summary>
    /// In a process that inherited a listener (a server's forked worker, a program exec'd), a listener of its own on the
    /// same port: <paramref name="inheritedDescriptor"/> is the inherited listener's <see cref="DoorbellDescriptor"/> or the
    /// descriptor given to <see cref="NameHolder"/>, which proves to the daemon that this process holds it. New
    /// connections come to this listener (and to other workers' that did the same), with those the inherited one had
    /// made and not accepted; none go to the inherited one any more.
    /// </summary>
    public static NormanTcpListener Inherit(int inheritedDescriptor, string? controlSocketPath = null, int backlog = 4096,
        TcpCongestionControl congestionControl = TcpCongestionControl.Cubic) =>
        new(TcpEndpoint.Inherit(controlSocketPath, inheritedDescriptor, backlog, congestionControl));

    /// <summary>The listener's doorbell descriptor, which a forked child that inherits it passes to <see cref="Inherit"/>.</summary>
    public int DoorbellDescriptor => _endpoint.DoorbellDescriptor;

    /// <summary>
    /// Keeps this listener for the program the process execs (pass it <see cref="DoorbellDescriptor"/>, not close-on-exec,
    /// to join with <see cref="Inherit"/>); false takes that back when the exec failed. It stays while the process lives.
    /// </summary>
    public void KeepAcrossExec(bool keep = true) => _endpoint.KeepAcrossExec(keep);

    /// <summary>
    /// Names the descriptor the program holds this listener by (a copy of it may be inherited, by fork or across exec):
    /// a process that inherits it may pass it to <see cref="Inherit"/> as its proof, as well as <see cref="DoorbellDescriptor"/>.
    /// </summary>
    public void NameHolder(int descriptor) => _endpoint.NameHolder(descriptor);

    public IPEndPoint LocalEndPoint => _endpoint.LocalEndPoint;

    /// <summary>The next established connection.</summary>
    public async Task<NormanTcpStream> AcceptAsync(CancellationToken cancellation = default)
    {
        var connection = await _endpoint.AcceptAsync(cancellation).ConfigureAwait(false);
        _endpoint.Hold();
        return new NormanTcpStream(connection, _endpoint);
    }

    /// <summary>The next established connection if one waits, else null: accept on a non-blocking socket.</summary>
    public NormanTcpStream? TryAccept()
    {
        if (!_endpoint.TryAccept(out var connection))
        {
            return null;
        }
        _endpoint.Hold();
        return new NormanTcpStream(connection, _endpoint);
    }

    /// <summary>Called on the protocol thread when a connection becomes ready to accept (libnorman's readiness).</summary>
    internal Action? ConnectionQueued { set => _endpoint.ConnectionQueued = value; }

    internal bool HasConnectionWaiting => _endpoint.HasConnectionWaiting;

    /// <summary>Stops listening; connections already accepted go on until they close.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _endpoint.StopListening();
        }
    }
}
