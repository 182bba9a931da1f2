using System.Net;
using Microsoft.AspNetCore.Connections;
using Norman.Client;

namespace Norman.AspNetCore;

/// <summary>
/// Kestrel's transport on Norman: each endpoint Kestrel binds (http://0.0.0.0:8080, http://[::]:8080 — dual-stack, as
/// Kestrel's default http://*:8080 is — and the like) becomes a <see cref="NormanTcpListener"/> at the daemon, and each
/// accepted connection a Kestrel connection over its stream.
/// </summary>
public sealed class NormanConnectionListenerFactory(string? controlSocketPath = null) : IConnectionListenerFactory
{
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var address = endpoint as IPEndPoint
            ?? throw new NotSupportedException($"Norman carries TCP over IP: it cannot listen on {endpoint}. Use an http://ADDRESS:PORT URL.");
        return ValueTask.FromResult<IConnectionListener>(new NormanConnectionListener(new NormanTcpListener(address, controlSocketPath)));
    }
}
