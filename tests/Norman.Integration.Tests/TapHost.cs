using Norman.Daemon;

namespace Norman.Integration.Tests;

/// <summary>
/// A daemon on a TAP whose other side is the kernel of a test namespace: Norman 198.18.N.1/24 and 2001:db8:N::1/64,
/// the peer .2 and ::2 (N given, so that classes running at once use different networks). Built on first use, so a
/// skipped test creates nothing; everything is removed on dispose.
/// </summary>
public sealed class TapHost(string role, int network) : IAsyncDisposable
{
    private TestNamespace? _peer;
    private NormanDaemon? _daemon;

    /// <summary>World-searchable, so that a program that drops to nobody (memcached -u) still reaches the control socket.</summary>
    public string Directory { get; } = WorldSearchable(System.IO.Directory.CreateTempSubdirectory($"norman-{role}-").FullName);

    private static string WorldSearchable(string path)
    {
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }
    public string SocketPath => Path.Combine(Directory, "norman.sock");
    public string NormanAddress => $"198.18.{network}.1";
    public string NormanAddress6 => $"2001:db8:{network}::1";
    public string PeerAddress => $"198.18.{network}.2";
    public NormanDaemon Daemon => _daemon ?? throw new InvalidOperationException("Call Peer() first.");

    public TestNamespace Peer()
    {
        if (_peer is not null)
        {
            return _peer;
        }
        string device = $"nrm{Guid.NewGuid().ToString("N")[..8]}";
        _peer = new TestNamespace(role);
        _daemon = NormanDaemon.Start(new DaemonOptions
        {
            SocketPath = SocketPath,
            Address = $"{NormanAddress}/24",
            Address6 = $"{NormanAddress6}/64",
            Port = $"tap:{device}",
            Namespace = _peer.Name,
            LineRateBitsPerSecond = 0,
        }, Norman.Daemon.Control.NullLog.Instance);
        _peer.Run("ip", "addr", "add", $"{PeerAddress}/24", "dev", device);
        _peer.Run("ip", "addr", "add", $"2001:db8:{network}::2/64", "dev", device, "nodad");
        _peer.Run("ip", "link", "set", device, "up");
        return _peer;
    }

    public async ValueTask DisposeAsync()
    {
        if (_daemon is not null)
        {
            await _daemon.DisposeAsync();
        }
        _peer?.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
