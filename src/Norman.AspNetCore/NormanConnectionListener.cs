using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Norman.Client;

namespace Norman.AspNetCore;

/// <summary>One endpoint Kestrel listens on: accepts Norman TCP connections until unbound.</summary>
internal sealed class NormanConnectionListener(NormanTcpListener listener) : IConnectionListener
{
    public EndPoint EndPoint => listener.LocalEndPoint;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return new NormanConnectionContext(await listener.AcceptAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (ChannelClosedException)
        {
            return null; // unbound: Kestrel's accept loop ends
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        listener.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        listener.Dispose();
        return ValueTask.CompletedTask;
    }
}
