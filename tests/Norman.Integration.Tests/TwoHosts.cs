using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Integration.Tests;

/// <summary>Two daemons on one machine as two hosts on one virtual wire (198.18.0.1 and .2), without root; removed on dispose.</summary>
public sealed class TwoHosts : IAsyncDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"norman-wire-{Guid.NewGuid():N}");
    private readonly string _wire = $"test-{Guid.NewGuid():N}";
    private readonly long _lineRate;

    /// <param name="configureLeft">Changes the left host's options (a bad cable between it and the wire, say).</param>
    public TwoHosts(long lineRate = 1_000_000_000, Action<DaemonOptions>? configureLeft = null)
    {
        Directory.CreateDirectory(_directory);
        _lineRate = lineRate;
        var left = Options("left", "198.18.0.1/24");
        configureLeft?.Invoke(left);
        Left = NormanDaemon.Start(left, NullLog.Instance);
        Right = NormanDaemon.Start(Options("right", "198.18.0.2/24"), NullLog.Instance);
    }

    public NormanDaemon Left { get; }
    /// <summary>Settable, for a test that replaces the right host's daemon (the new one is disposed in its place).</summary>
    public NormanDaemon Right { get; set; }
    public string LeftSocket => Path.Combine(_directory, "left.sock");
    public string RightSocket => Path.Combine(_directory, "right.sock");

    /// <summary>A host on this wire: its control socket is NAME.sock in the hosts' directory.</summary>
    public DaemonOptions Options(string name, string address)
    {
        var options = new DaemonOptions
        {
            SocketPath = Path.Combine(_directory, $"{name}.sock"),
            Port = $"wire:{_wire}",
            Address = address,
            LineRateBitsPerSecond = _lineRate,
        };
        return options;
    }

    public async ValueTask DisposeAsync()
    {
        await Left.DisposeAsync();
        await Right.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
