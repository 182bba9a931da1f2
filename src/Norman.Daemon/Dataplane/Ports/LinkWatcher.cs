using Norman.Daemon.Control;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// Tells the administrator when the interface a port sits on (AF_PACKET, XDP) goes down, comes back or is deleted, as
/// the kernel's log would: the port itself keeps running through all three (its sockets stay bound; nothing moves
/// while the link is down), so without this nothing would say why traffic stopped. Reads the interface's operstate
/// from sysfs twice a second.
/// </summary>
public sealed class LinkWatcher : IAsyncDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(500);
    private readonly string _device;
    private readonly ILogSink _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;
    private string _state;

    public LinkWatcher(string device, ILogSink log)
    {
        (_device, _log) = (device, log);
        _state = State();
        _loop = Task.Run(RunAsync);
    }

    private string State()
    {
        try
        {
            return File.ReadAllText($"/sys/class/net/{_device}/operstate").Trim();
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return "gone";
        }
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(Period);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                string state = State();
                if (state == _state)
                {
                    continue;
                }
                _state = state;
                _log.Warn(state switch
                {
                    "gone" => $"{_device} is gone (deleted): the port carries nothing now; restart normand on an interface that exists.",
                    "up" or "unknown" => $"{_device} is up again: traffic moves.",
                    _ => $"{_device} is {state}: nothing moves on it until it is up (`ip link set {_device} up`).",
                });
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }
}
