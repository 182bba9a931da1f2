using System.Net;
using Norman.Client.Tcp;

namespace Norman.Client;

/// <summary>
/// A TCP connection through a Norman daemon, as a <see cref="Stream"/>: the TCP stack runs in this process (on the
/// socket's own thread), the daemon carries its segments through shared memory and applies the administrator's
/// filter, QoS and capture to them. Reads return what arrived (0 at the peer's FIN); writes return once the bytes
/// are in the send buffer. Dispose closes gracefully (FIN), or resets if data was left unread, as close(2) does.
/// </summary>
public sealed class NormanTcpStream : Stream
{
    private readonly TcpConnection _connection;
    private readonly TcpEndpoint _endpoint;
    private int _disposed;
    private NormanTcpPipe? _pipe;

    internal NormanTcpStream(TcpConnection connection, TcpEndpoint endpoint)
    {
        _connection = connection;
        _endpoint = endpoint;
    }

    /// <summary>Connects to <paramref name="remote"/> from a free port (three-way handshake; SYN retried as Linux does).</summary>
    public static Task<NormanTcpStream> ConnectAsync(IPEndPoint remote, string? controlSocketPath = null, CancellationToken cancellation = default) =>
        ConnectAsync(remote, TcpCongestionControl.Cubic, controlSocketPath, cancellation);

    /// <summary>
    /// Connects with the congestion control given (as Linux's TCP_CONGESTION before connect), from
    /// <paramref name="localEndPoint"/> when given (a bind before connect: its port, or 0 for a free one; the wildcard
    /// or the host's address).
    /// </summary>
    public static async Task<NormanTcpStream> ConnectAsync(IPEndPoint remote, TcpCongestionControl congestionControl, string? controlSocketPath = null,
        CancellationToken cancellation = default, IPEndPoint? localEndPoint = null)
    {
        var (endpoint, connection) = TcpEndpoint.Connect(controlSocketPath, remote, slotCount: null, congestionControl, localEndPoint);
        var stream = new NormanTcpStream(connection, endpoint);
        try
        {
            await connection.Established.WaitAsync(cancellation).ConfigureAwait(false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        return stream;
    }

    /// <summary>The peer; on an IPv6 (dual-stack) socket an IPv4 peer is v4-mapped, as Linux's accept gives it.</summary>
    public IPEndPoint RemoteEndPoint => new(LocalEndPoint.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
        ? _connection.RemoteAddress.ToIPAddress().MapToIPv6() : _connection.RemoteAddress.ToIPAddress(), _connection.RemotePort);
    public IPEndPoint LocalEndPoint => _endpoint.LocalEndPoint;
    public TcpState State => _connection.State;

    /// <summary>The connection's control block in one line, as `ss -ti` shows a kernel socket's: windows, RTO, queues.</summary>
    public string Describe() => _connection.Describe();

    /// <summary>
    /// The connection as a pair of pipes (System.IO.Pipelines) for pipe-based servers: the input completes at the peer's
    /// FIN, completing the output sends FIN (an error resets). The same connection as the stream: use one or the other.
    /// </summary>
    public System.IO.Pipelines.IDuplexPipe Pipe => Volatile.Read(ref _pipe) ?? CreatePipe();

    /// <summary>Made on first use; two threads asking at once must get the same pipe, or their reads would interleave.</summary>
    private NormanTcpPipe CreatePipe()
    {
        var pipe = new NormanTcpPipe(this);
        return Interlocked.CompareExchange(ref _pipe, pipe, null) ?? pipe;
    }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _connection.ReadAsync(buffer, cancellationToken);

    /// <summary>A read that does not wait: the bytes copied, 0 at the peer's FIN, -1 when nothing has arrived (EAGAIN).</summary>
    public int TryRead(Span<byte> buffer) => _connection.TryRead(buffer);

    /// <summary>A <see cref="TryRead"/> that leaves the bytes for the next read (MSG_PEEK).</summary>
    internal int TryPeek(Span<byte> buffer) => _connection.TryRead(buffer, peek: true);

    /// <summary>Bytes received and not yet read (FIONREAD).</summary>
    internal int Available => _connection.Available;

    /// <summary>A write that does not wait: the bytes taken into the send buffer, 0 when it is full (EAGAIN).</summary>
    public int TryWrite(ReadOnlySpan<byte> data) => _connection.TryWrite(data);

    /// <summary>Called on the protocol thread when the connection may have become readable or writable (libnorman's readiness).</summary>
    internal Action? ReadinessChanged { set => _connection.ReadinessChanged = value; }

    internal bool IsReadable => _connection.IsReadable;

    internal bool IsWritable => _connection.IsWritable;

    /// <summary>Everything written, and the FIN after it, has been acknowledged (or the connection is gone): a closed stream's process may end.</summary>
    internal bool HasDeliveredEverything => _connection.State is TcpState.FinWait2 or TcpState.TimeWait or TcpState.Closed;

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _connection.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Segments leave as soon as the socket's thread sees the bytes (no Nagle): nothing to flush.</summary>
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Half-close: sends FIN after the bytes written so far; reading goes on (shutdown(SHUT_WR)).</summary>
    public void ShutdownSend() => _connection.ShutdownSend();

    /// <summary>Resets the connection at once (RST), discarding what is unsent.</summary>
    public void Abort()
    {
        _connection.Abort();
        Dispose();
    }

    /// <summary>
    /// Closes this stream without closing the connection, which forked children (<paramref name="children"/>: pidfds,
    /// taken) may hold: kept by the listener's stack until one takes it up or none holds it any more (TcpEndpoint's
    /// KeepForChildren; <paramref name="holder"/> is the descriptor the program held it by). False: close it instead.
    /// </summary>
    internal bool KeepForChildren(int[] children, int holder)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            Array.ForEach(children, child => Core.Shm.Libc.Close(child));
            return false;
        }
        _connection.ReadinessChanged = null;
        if (!_endpoint.KeepForChildren(_connection, children, holder))
        {
            return false;
        }
        Interlocked.Exchange(ref _disposed, 1); // the endpoint holds what this stream held
        return true;
    }

    /// <summary>A connection this process inherited across fork (<paramref name="proof"/>: its descriptor), taken up as its own.</summary>
    internal static NormanTcpStream Claim(int proof, string? controlSocketPath = null)
    {
        var (endpoint, connection) = TcpEndpoint.Claim(controlSocketPath, proof);
        return new NormanTcpStream(connection, endpoint);
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _connection.CloseAsLastDescriptor();
            _endpoint.Release();
        }
        base.Dispose(disposing);
    }
}
