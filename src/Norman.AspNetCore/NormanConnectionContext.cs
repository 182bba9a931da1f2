using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Norman.Client;

namespace Norman.AspNetCore;

/// <summary>A Kestrel connection over a Norman TCP stream: its transport is the connection's pair of pipes.</summary>
internal sealed class NormanConnectionContext : ConnectionContext
{
    private static long _nextId;
    private readonly NormanTcpStream _stream;
    private readonly CancellationTokenSource _closed = new();

    public NormanConnectionContext(NormanTcpStream stream)
    {
        _stream = stream;
        Transport = stream.Pipe;
        ConnectionId = $"norman-{Interlocked.Increment(ref _nextId)}";
        LocalEndPoint = stream.LocalEndPoint;
        RemoteEndPoint = stream.RemoteEndPoint;
        ConnectionClosed = _closed.Token;
    }

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; } = new FeatureCollection();
    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
    public override IDuplexPipe Transport { get; set; }
    public override EndPoint? LocalEndPoint { get; set; }
    public override EndPoint? RemoteEndPoint { get; set; }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _stream.Abort();
        _closed.Cancel();
    }

    public override async ValueTask DisposeAsync()
    {
        await _stream.Pipe.Input.CompleteAsync().ConfigureAwait(false);
        await _stream.Pipe.Output.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        _closed.Cancel();
        _closed.Dispose();
    }
}
