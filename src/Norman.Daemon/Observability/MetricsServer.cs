using System.Net;
using System.Text;
using Norman.Core.Protocol;

namespace Norman.Daemon.Observability;

/// <summary>
/// The opt-in Prometheus endpoint (`norman up --metrics 127.0.0.1:9469`): GET /metrics answers every counter in the
/// text exposition format, as node_exporter does; anything else is a 404. It sees what root sees (process names and
/// pids of every socket), so it listens where it is told, which should be loopback.
/// </summary>
public sealed class MetricsServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<StatsInfo> _stats;
    private readonly Task _serving;

    public MetricsServer(string endpoint, Func<StatsInfo> stats)
    {
        _stats = stats;
        if (!IPEndPoint.TryParse(endpoint, out var address) || address.Port == 0)
        {
            throw new FormatException($"'{endpoint}' is not an address and port: write it as 127.0.0.1:9469.");
        }
        Endpoint = address;
        // Every address (0.0.0.0, ::) is HttpListener's wildcard host "*": a literal 0.0.0.0 is refused ("not supported"),
        // and a request names the address it was sent to, never 0.0.0.0.
        string host = address.Address.Equals(IPAddress.Any) || address.Address.Equals(IPAddress.IPv6Any) ? "*"
            : address.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address.Address}]"
            : address.Address.ToString();
        _listener.Prefixes.Add($"http://{host}:{address.Port}/");
        try
        {
            _listener.Start();
        }
        catch (HttpListenerException error)
        {
            throw new IOException($"Cannot serve metrics on {endpoint}: {error.Message}. Pick a free port, or leave --metrics out.", error);
        }
        _serving = Task.Run(ServeAsync);
    }

    public IPEndPoint Endpoint { get; }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception error) when (error is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return; // stopped
            }
            try
            {
                var response = context.Response;
                if (context.Request.HttpMethod == "GET" && context.Request.Url?.AbsolutePath == "/metrics")
                {
                    var body = Encoding.UTF8.GetBytes(PrometheusText.Render(_stats()));
                    response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                    response.ContentLength64 = body.Length;
                    await response.OutputStream.WriteAsync(body);
                }
                else
                {
                    response.StatusCode = 404;
                }
                response.Close();
            }
            catch (Exception error) when (error is HttpListenerException or IOException or ObjectDisposedException)
            {
                // The scraper went away mid-answer: the next scrape is served as usual.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Close alone: after Stop, .NET's managed HttpListener removes its prefixes again at Close by binding the port
        // afresh, which failed ("Address already in use") when another process had taken the port in between.
        _listener.Close();
        await _serving;
    }
}
