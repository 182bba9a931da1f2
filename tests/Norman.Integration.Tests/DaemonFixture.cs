using Norman.Core.Packets;
using Norman.Daemon;
using Norman.Daemon.Control;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Integration.Tests;

/// <summary>A daemon in this process on a virtual wire, with its control socket in a fresh directory; removed on dispose.</summary>
public sealed class DaemonFixture : IAsyncDisposable
{
    public DaemonFixture(long lineRate = 0, Action<DaemonOptions>? configure = null)
    {
        Directory = Path.Combine(Path.GetTempPath(), $"norman-it-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(Directory);
        // World-searchable, so an application run as nobody can reach the socket.
        File.SetUnixFileMode(Directory, (UnixFileMode)0b111_101_101);
        SocketPath = System.IO.Path.Combine(Directory, "norman.sock");
        var options = new DaemonOptions { SocketPath = SocketPath, LineRateBitsPerSecond = lineRate };
        configure?.Invoke(options);
        Daemon = NormanDaemon.Start(options, NullLog.Instance);
    }

    public string Directory { get; }
    public string SocketPath { get; }
    public NormanDaemon Daemon { get; }
    public SimulatedPeer Peer => Daemon.Peer!;

    public static readonly NetAddress PeerAddress = NetAddress.Parse("198.18.0.2");
    public static readonly NetAddress HostAddress = NetAddress.Parse("198.18.0.1");

    /// <summary>Starts a program built beside the tests, with NORMAN_SOCKET pointing at this daemon.</summary>
    public AppProcess Start(string program, params string[] arguments) => AppProcess.Start(program, SocketPath, null, arguments);

    public async ValueTask DisposeAsync()
    {
        await Daemon.DisposeAsync();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
