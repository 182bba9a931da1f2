using System.Net;
using System.Security.Cryptography;
using Norman.Client;
using Norman.Client.Tcp;

namespace Norman.Integration.Tests;

/// <summary>TCP between two Norman hosts on a shared wire: both stacks are the client library's.</summary>
public sealed class TcpTests : IAsyncLifetime
{
    private static readonly IPEndPoint Server = new(IPAddress.Parse("198.18.0.2"), 7000);
    private TwoHosts _hosts = null!;

    public Task InitializeAsync()
    {
        _hosts = new TwoHosts();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _hosts.DisposeAsync();

    [Fact]
    public async Task A_client_and_a_server_exchange_bytes_both_ways_and_close_gracefully()
    {
        await using var connected = await ConnectAsync(seconds: 30);
        var (client, server, timeout) = (connected.Client, connected.Server, connected.Timeout);
        Assert.Equal(TcpState.Established, client.State);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), server.RemoteEndPoint.Address);
        Assert.Equal(client.LocalEndPoint.Port, server.RemoteEndPoint.Port);

        await client.WriteAsync("hello, norman"u8.ToArray(), timeout.Token);
        var buffer = new byte[64];
        Assert.Equal("hello, norman", System.Text.Encoding.ASCII.GetString(buffer, 0, await ReadExactlyAsync(server, buffer, 13, timeout.Token)));
        await server.WriteAsync("hello, client"u8.ToArray(), timeout.Token);
        Assert.Equal("hello, client", System.Text.Encoding.ASCII.GetString(buffer, 0, await ReadExactlyAsync(client, buffer, 13, timeout.Token)));

        // Half-close: the client's FIN reaches the server as end of stream; the server can still answer.
        client.ShutdownSend();
        Assert.Equal(0, await server.ReadAsync(buffer, timeout.Token));
        await server.WriteAsync("bye"u8.ToArray(), timeout.Token);
        server.ShutdownSend();
        Assert.Equal(3, await ReadExactlyAsync(client, buffer, 3, timeout.Token));
        Assert.Equal(0, await client.ReadAsync(buffer, timeout.Token));
        Assert.True(SpinWait.SpinUntil(() => client.State == TcpState.TimeWait && server.State == TcpState.Closed, TimeSpan.FromSeconds(10)),
            $"client {client.State}, server {server.State}");
    }

    /// <summary>
    /// ss lists a listener's connections, with what the stack knows of each under -i; stats counts its pipes once,
    /// not once more per connection with nothing in it.
    /// </summary>
    [Fact]
    public async Task Stats_show_a_listener_with_a_connection_as_one_socket()
    {
        await using var connected = await ConnectAsync(seconds: 30);
        var (client, server, timeout) = (connected.Client, connected.Server, connected.Timeout);
        var socket = Assert.Single(_hosts.Right.Control.Sockets.Snapshot());
        Assert.True(SpinWait.SpinUntil(() => socket.Connections().Count == 1, TimeSpan.FromSeconds(10)), "the library never published its connection");
        var viewer = new Norman.Daemon.Control.PeerIdentity(Environment.ProcessId, 0, 0, "test", "", "/");
        var row = Assert.Single(_hosts.Right.Control.Stats(viewer).Sockets);
        Assert.Equal(("tcp", 7000), (row.Protocol, row.LocalPort));
        Assert.True(row.RxPackets >= 2, $"{row.RxPackets} packets in"); // the handshake's SYN and ACK

        // ss -ti: the connection's row, and under it what the server's stack knows of it, as Linux's ss shows a kernel
        // socket's: timestamps and SACK (both ends offered them), CUBIC, and the MSS from the client's SYN less the 12
        // bytes of timestamps each segment carries.
        await server.WriteAsync(new byte[100_000], timeout.Token);
        await client.ReadExactlyAsync(new byte[100_000], timeout.Token);
        string table = "";
        var detail = new System.Text.RegularExpressions.Regex(@"ESTAB\s+0\s+0\s+198\.18\.0\.2:7000\s+198\.18\.0\.1:\d+\s*\n\s+ts sack cubic rto:(\d+) rtt:[\d.]+ mss:1448 cwnd:(\d+) retrans:\d+");
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(10) && !detail.IsMatch(table);)
        {
            table = await ApplicationProcessTests.RunNormanAsync("ss", "-tni", "--socket", _hosts.RightSocket);
        }
        var figures = detail.Match(table);
        Assert.True(figures.Success, table);
        Assert.InRange(int.Parse(figures.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 200, 60_000);
        Assert.True(int.Parse(figures.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) >= 1, table);
    }

    [Fact]
    public async Task Eight_megabytes_cross_both_ways_byte_for_byte()
    {
        await using var connected = await ConnectAsync(seconds: 30);
        var (client, server, timeout) = (connected.Client, connected.Server, connected.Timeout);

        await EchoBothWays(client, server, RandomNumberGenerator.GetBytes(8 << 20), timeout);
    }

    /// <summary>
    /// The cable loses 1% of frames each way, delivers 1% twice and holds 2% back behind the next: retransmission,
    /// duplicate detection and reassembly must still deliver every byte, in order.
    /// </summary>
    [Fact]
    public async Task Four_megabytes_cross_both_ways_byte_for_byte_over_a_cable_that_loses_duplicates_and_reorders()
    {
        await _hosts.DisposeAsync();
        _hosts = new TwoHosts(configureLeft: options => (options.WireLoss, options.WireDuplicate, options.WireReorder) = (0.01, 0.01, 0.02));
        await using var connected = await ConnectAsync(seconds: 90);
        var (client, server, timeout) = (connected.Client, connected.Server, connected.Timeout);
        await EchoBothWays(client, server, RandomNumberGenerator.GetBytes(4 << 20), timeout);
        var port = (Norman.Daemon.Dataplane.Ports.ImpairedPort)_hosts.Left.Engine.Port;
        foreach (var cable in new[] { port.Outgoing, port.Incoming })
        {
            Assert.True(cable.Lost > 0 && cable.Duplicated > 0 && cable.HeldBack > 0, $"lost {cable.Lost}, duplicated {cable.Duplicated}, held back {cable.HeldBack}");
        }
    }

    /// <summary>
    /// A cable that loses one frame in ten each way: both ends time out and send again, often at once. What either
    /// sends while it goes back over what the other already has must still carry its acknowledgement through.
    /// </summary>
    [Fact]
    public async Task Bytes_cross_both_ways_over_a_cable_that_loses_a_frame_in_ten()
    {
        await _hosts.DisposeAsync();
        _hosts = new TwoHosts(configureLeft: options => options.WireLoss = 0.1);
        await using var connected = await ConnectAsync(seconds: 90);
        var (client, server, timeout) = (connected.Client, connected.Server, connected.Timeout);
        await EchoBothWays(client, server, RandomNumberGenerator.GetBytes(512 << 10), timeout);
    }

    /// <summary>
    /// The pipes of System.IO.Pipelines, as a pipe-based server uses them: the server copies its input to its output
    /// until the client's FIN completes it, then completes its output, which the client reads as the end.
    /// </summary>
    [Fact]
    public async Task Through_the_connections_pipes_a_megabyte_is_echoed_and_completing_the_output_sends_fin()
    {
        await using var connected = await ConnectAsync(seconds: 30);
        var (client, server, timeout) = (connected.Client, connected.Server, connected.Timeout);
        var data = RandomNumberGenerator.GetBytes(1 << 20);

        var echo = Task.Run(async () =>
        {
            await server.Pipe.Input.CopyToAsync(server.Pipe.Output, timeout.Token);
            await server.Pipe.Output.CompleteAsync();
        });
        var sending = Task.Run(async () =>
        {
            for (int offset = 0; offset < data.Length; offset += 30_000)
            {
                int length = Math.Min(30_000, data.Length - offset);
                data.AsSpan(offset, length).CopyTo(client.Pipe.Output.GetSpan(length));
                client.Pipe.Output.Advance(length);
                await client.Pipe.Output.FlushAsync(timeout.Token);
            }
            await client.Pipe.Output.CompleteAsync();
        });
        var back = new MemoryStream();
        while (true)
        {
            var result = await client.Pipe.Input.ReadAsync(timeout.Token);
            foreach (var segment in result.Buffer)
            {
                back.Write(segment.Span);
            }
            client.Pipe.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }
        await Task.WhenAll(echo, sending);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(back.ToArray()));
    }

    [Fact]
    public async Task A_connection_to_a_port_nobody_listens_on_is_refused()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var refusal = await Assert.ThrowsAsync<NormanException>(() => NormanTcpStream.ConnectAsync(Server, _hosts.LeftSocket, timeout.Token));
        Assert.Equal("ECONNREFUSED", refusal.Code);
    }

    /// <summary>The server echoes everything the client sends while the client is still sending; what comes back must be what went.</summary>
    private async Task EchoBothWays(NormanTcpStream client, NormanTcpStream server, byte[] data, CancellationTokenSource timeout)
    {
        // The server echoes everything back while the client is still sending.
        var echo = Task.Run(async () =>
        {
            var chunk = new byte[65536];
            int read;
            while ((read = await server.ReadAsync(chunk, timeout.Token)) > 0)
            {
                await server.WriteAsync(chunk.AsMemory(0, read), timeout.Token);
            }
            server.ShutdownSend();
        });
        var sending = Task.Run(async () =>
        {
            for (int offset = 0; offset < data.Length; offset += 100_000)
            {
                await client.WriteAsync(data.AsMemory(offset, Math.Min(100_000, data.Length - offset)), timeout.Token);
            }
            client.ShutdownSend();
        });
        var back = new MemoryStream();
        try
        {
            await client.CopyToAsync(back, timeout.Token);
            await Task.WhenAll(echo, sending);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"stalled after {back.Length} bytes back; client {client.Describe()}; server {server.Describe()}; " +
                $"left drops {string.Join(",", _hosts.Left.Engine.Counters.Snapshot().Where(c => c.Value > 0 && c.Key.StartsWith("drop", StringComparison.Ordinal)))}; " +
                $"right drops {string.Join(",", _hosts.Right.Engine.Counters.Snapshot().Where(c => c.Value > 0 && c.Key.StartsWith("drop", StringComparison.Ordinal)))}");
        }
        Assert.Equal(data.Length, back.Length);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(back.ToArray()));
    }

    /// <summary>A client on the left host connected to a listener on the right one (port 7000), and the time the test has.</summary>
    /// <summary>
    /// SO_REUSEPORT: one user's listeners share a port, a listener that did not ask is refused it, new connections
    /// spread over the listeners, and each connection stays with its listener while another joins and one leaves.
    /// </summary>
    [Fact]
    public async Task Listeners_sharing_a_port_spread_connections_and_keep_each_while_others_join_and_leave()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var any = new IPEndPoint(IPAddress.Any, 7000);
        var listeners = new List<NormanTcpListener>
        {
            new(any, _hosts.RightSocket, reusePort: true),
            new(any, _hosts.RightSocket, reusePort: true),
        };
        Assert.Equal("EADDRINUSE", Assert.Throws<NormanException>(() => new NormanTcpListener(any, _hosts.RightSocket)).Code);
        // Accepted connections by the client's port, with the listener that took each.
        var accepted = new System.Collections.Concurrent.ConcurrentDictionary<int, (int Listener, NormanTcpStream Stream)>();
        var accepting = new List<Task>();
        void Accept(int index) => accepting.Add(Task.Run(async () =>
        {
            while (true)
            {
                var stream = await listeners[index].AcceptAsync(timeout.Token);
                accepted[stream.RemoteEndPoint.Port] = (index, stream);
            }
        }));
        Accept(0);
        Accept(1);
        var clients = new List<NormanTcpStream>();
        async Task ConnectAsync(int count)
        {
            for (int i = 0; i < count; i++)
            {
                clients.Add(await NormanTcpStream.ConnectAsync(Server, _hosts.LeftSocket, timeout.Token));
            }
            Assert.True(SpinWait.SpinUntil(() => accepted.Count == clients.Count, TimeSpan.FromSeconds(30)), $"{accepted.Count} of {clients.Count} accepted");
        }
        try
        {
            await ConnectAsync(16);
            Assert.Equal([0, 1], accepted.Values.Select(a => a.Listener).Distinct().Order());

            // A third listener joins and the first leaves: every connection of the second still talks both ways.
            listeners.Add(new NormanTcpListener(any, _hosts.RightSocket, reusePort: true));
            Accept(2);
            listeners[0].Dispose();
            var buffer = new byte[16];
            foreach (var client in clients.Where(c => accepted[c.LocalEndPoint.Port].Listener == 1))
            {
                var server = accepted[client.LocalEndPoint.Port].Stream;
                await client.WriteAsync("ping"u8.ToArray(), timeout.Token);
                Assert.Equal(4, await ReadExactlyAsync(server, buffer, 4, timeout.Token));
                await server.WriteAsync("pong"u8.ToArray(), timeout.Token);
                Assert.Equal(4, await ReadExactlyAsync(client, buffer, 4, timeout.Token));
            }
            // New connections reach the newcomer too.
            int before = clients.Count;
            await ConnectAsync(16);
            Assert.Contains(clients.Skip(before), client => accepted[client.LocalEndPoint.Port].Listener == 2);
        }
        finally
        {
            timeout.Cancel();
            foreach (var (_, stream) in accepted.Values)
            {
                await stream.DisposeAsync();
            }
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
            listeners.ForEach(listener => listener.Dispose());
            await Task.WhenAll(accepting).ContinueWith(_ => { }, TaskScheduler.Default); // cancelled, as meant
        }
    }

    /// <summary>
    /// A server's worker that inherited the listener across fork joins it with the listener's doorbell as proof: new
    /// connections go to the worker's listener, none to the inherited one, whose own connection stays with it; a
    /// descriptor that is no listener's doorbell proves nothing.
    /// </summary>
    [Fact]
    public async Task A_worker_that_inherited_a_listener_takes_the_new_connections_and_the_old_one_stays()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var master = new NormanTcpListener(7000, _hosts.RightSocket);
        var connecting = NormanTcpStream.ConnectAsync(Server, _hosts.LeftSocket, timeout.Token);
        await using var early = await master.AcceptAsync(timeout.Token);
        await using var earlyClient = await connecting;

        using (var forged = Norman.Core.Shm.EventFd.Create())
        {
            var refused = Assert.Throws<NormanException>(() => NormanTcpListener.Inherit(forged.Fd, _hosts.RightSocket));
            Assert.Equal(Norman.Core.Protocol.ControlProtocol.Errors.NotPermitted, refused.Code);
        }

        using var worker = NormanTcpListener.Inherit(master.DoorbellDescriptor, _hosts.RightSocket);
        var clients = new List<NormanTcpStream>();
        var accepted = new List<NormanTcpStream>();
        try
        {
            for (int i = 0; i < 8; i++)
            {
                clients.Add(await NormanTcpStream.ConnectAsync(Server, _hosts.LeftSocket, timeout.Token));
                accepted.Add(await worker.AcceptAsync(timeout.Token));
            }
            Assert.Null(master.TryAccept()); // none went to the inherited listener
            var buffer = new byte[16];
            await earlyClient.WriteAsync("still here"u8.ToArray(), timeout.Token);
            Assert.Equal(10, await ReadExactlyAsync(early, buffer, 10, timeout.Token));
            await accepted[^1].WriteAsync("worker"u8.ToArray(), timeout.Token);
            Assert.Equal(6, await ReadExactlyAsync(clients[^1], buffer, 6, timeout.Token));
        }
        finally
        {
            foreach (var stream in clients.Concat(accepted))
            {
                await stream.DisposeAsync();
            }
        }
    }

    private async Task<Connected> ConnectAsync(int seconds)
    {
        var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var listener = new NormanTcpListener(7000, _hosts.RightSocket);
        var accepting = listener.AcceptAsync(timeout.Token);
        var client = await NormanTcpStream.ConnectAsync(Server, _hosts.LeftSocket, timeout.Token);
        return new Connected(timeout, listener, client, await accepting);
    }

    private sealed class Connected(CancellationTokenSource timeout, NormanTcpListener listener, NormanTcpStream client, NormanTcpStream server)
        : IAsyncDisposable
    {
        public CancellationTokenSource Timeout => timeout;
        public NormanTcpStream Client => client;
        public NormanTcpStream Server => server;

        public async ValueTask DisposeAsync()
        {
            await server.DisposeAsync();
            await client.DisposeAsync();
            listener.Dispose();
            timeout.Dispose();
        }
    }

    private static async Task<int> ReadExactlyAsync(Stream stream, byte[] buffer, int count, CancellationToken cancellation)
    {
        await stream.ReadExactlyAsync(buffer.AsMemory(0, count), cancellation);
        return count;
    }
}
