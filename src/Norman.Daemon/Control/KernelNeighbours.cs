using System.Globalization;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Control;

/// <summary>
/// Next hops from the kernel, when Norman shares its address (ARP for it is the kernel's): what the dataplane asks for,
/// the kernel is made to resolve (<c>ip neigh replace ADDRESS dev DEVICE use</c>: the kernel sends its ARP request),
/// and every resolved entry of the kernel's table on the device is copied into Norman's, checked every 20 ms.
/// </summary>
public sealed class KernelNeighbours : IAsyncDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan AskAgainAfter = TimeSpan.FromSeconds(1);
    private const int ArpFlagComplete = 0x2;

    private readonly Engine _engine;
    private readonly KernelResolutions _asks;
    private readonly string _device;
    private readonly ILogSink _log;
    private readonly Dictionary<uint, MacAddress> _copied = new();
    private readonly Dictionary<uint, DateTime> _asked = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;

    public KernelNeighbours(Engine engine, KernelResolutions asks, string device, ILogSink log)
    {
        (_engine, _asks, _device, _log) = (engine, asks, device, log);
        Copy();
        _loop = Task.Run(RunAsync);
    }

    private async Task RunAsync()
    {
        using var timer = new PeriodicTimer(Period);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                Ask();
                Copy();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private void Ask()
    {
        var now = DateTime.UtcNow;
        foreach (uint address in _asks.Take().Distinct())
        {
            if (_asked.TryGetValue(address, out var at) && now - at < AskAgainAfter)
            {
                continue;
            }
            _asked[address] = now;
            try
            {
                IpCommand.Run("neigh", "replace", NetAddress.FromV4(address).ToString(), "dev", _device, "use");
            }
            catch (InvalidOperationException error)
            {
                _log.Warn($"the kernel could not be asked to resolve {NetAddress.FromV4(address)}: {error.Message}");
            }
        }
    }

    /// <summary>The kernel's resolved neighbours on the device (/proc/net/arp: address, type, flags, MAC, mask, device).</summary>
    private void Copy()
    {
        foreach (var line in File.ReadLines("/proc/net/arp").Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[5] != _device
                || !int.TryParse(fields[2].AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int flags) || (flags & ArpFlagComplete) == 0
                || !NetAddress.TryParse(fields[0], out var address) || fields[3] == "00:00:00:00:00:00")
            {
                continue;
            }
            var mac = MacAddress.Parse(fields[3]);
            if (_copied.TryGetValue(address.V4, out var known) && known == mac)
            {
                continue;
            }
            _copied[address.V4] = mac;
            _engine.Post(new AddNeighbourCommand(address, mac));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>The kernel's default route's gateway on the device, if it has one (/proc/net/route, little-endian hex).</summary>
    public static NetAddress? DefaultGateway(string device)
    {
        foreach (var line in File.ReadLines("/proc/net/route").Skip(1))
        {
            var fields = line.Split('\t', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (fields.Length >= 8 && fields[0] == device && fields[1] == "00000000" && fields[7] == "00000000"
                && uint.TryParse(fields[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint gateway) && gateway != 0)
            {
                return NetAddress.FromV4(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(gateway));
            }
        }
        return null;
    }
}
