using Norman.Core.Pipes;
using Norman.Core.Protocol;

namespace Norman.Daemon;

/// <summary>How a daemon is started; `norman up` fills it from its flags.</summary>
public sealed class DaemonOptions
{
    /// <summary>The control socket; null means $NORMAN_SOCKET or /run/norman/norman.sock.</summary>
    public string? SocketPath { get; set; }

    /// <summary>"virtual" (a wire to the simulated peer host), "wire:NAME" (a wire shared with another daemon), "tap:DEVICE",
    /// "afpacket:INTERFACE" or "xdp:INTERFACE[:QUEUES]".</summary>
    public string Port { get; set; } = "virtual";

    /// <summary>For a TAP port: the network namespace to move the device into (the peer's side lives there).</summary>
    public string? Namespace { get; set; }

    /// <summary>This host's IPv4 address and prefix. 198.18.0.0/15 is the range set aside for benchmarking (RFC 2544).</summary>
    public string Address { get; set; } = DefaultAddress;
    public const string DefaultAddress = "198.18.0.1/24";

    /// <summary>On an XDP port: use the kernel's own address on the interface, and take only the ports Norman's sockets hold.</summary>
    public bool ShareAddress { get; set; }

    /// <summary>The simulated peer on a virtual port; null: the subnet's second host (198.18.0.2 on the default subnet), or its first when that is ours.</summary>
    public string? PeerAddress { get; set; }

    public string? Gateway { get; set; }

    /// <summary>IPv6 addresses (each with a prefix, /64 by default; comma-separated) for the host; none by default.</summary>
    public string? Address6 { get; set; }

    /// <summary>The IPv6 next hop for addresses outside --address6's prefix (the global or link-local address of a router).</summary>
    public string? Gateway6 { get; set; }

    /// <summary>Take the IPv6 default router from router advertisements (Linux's accept_ra) when no --gateway6 is given.</summary>
    public bool AcceptRouterAdvertisements { get; set; }

    /// <summary>This host's MAC; null picks a random locally administered one.</summary>
    public string? Mac { get; set; }

    /// <summary>For a wire:NAME port: the share of frames it loses, sends twice, or holds back behind the next (0 to 0.5).</summary>
    public double WireLoss { get; set; }
    public double WireDuplicate { get; set; }
    public double WireReorder { get; set; }
    /// <summary>How long the cable holds each frame this host sends, in milliseconds (0: none).</summary>
    public int WireDelayMilliseconds { get; set; }

    /// <summary>The wire's line rate in bits per second; 0 for none.</summary>
    public long LineRateBitsPerSecond { get; set; } = 10_000_000_000;

    public int SlotCount { get; set; } = PipeLayout.DefaultSlotCount;

    /// <summary>Sockets' memory of --slots pipes made ahead of binds, per protocol (0: every bind makes its own).</summary>
    public int PipePoolDepth { get; set; } = 4;

    /// <summary>Flows connection tracking holds at most, as nf_conntrack_max; its memory is taken at start.</summary>
    public int MaxTrackedFlows { get; set; } = 65536;
    public int MaxSocketsPerUid { get; set; } = 4096;
    /// <summary>Control connections one user may hold open (each socket of the client library holds one).</summary>
    public int MaxConnectionsPerUid { get; set; } = Control.ControlServer.DefaultMaxConnectionsPerUid;
    /// <summary>Bytes of pipe memory (both rings of every socket) one user may hold.</summary>
    public long MaxPipeBytesPerUid { get; set; } = Control.SocketTable.DefaultMaxPipeBytesPerUid;
    /// <summary>Captures one ordinary user may run at once.</summary>
    public int MaxCapturesPerUid { get; set; } = Control.ControlPlane.DefaultMaxCapturesPerUid;
    public bool VerifyChecksums { get; set; } = true;

    /// <summary>Who may connect to the control socket. Like socket(2), any user may open sockets; the daemon checks each operation.</summary>
    public UnixFileMode SocketMode { get; set; } =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    public bool Verbose { get; set; }

    /// <summary>Members of this group (by gid, as of their connect) are administrators, besides root.</summary>
    public int? AdminGroup { get; set; }

    /// <summary>Where the filter policy is kept and restored from at start; none keeps it in memory only.</summary>
    public string? PolicyFile { get; set; }

    /// <summary>Where to serve Prometheus metrics (ADDRESS:PORT, loopback advised); null for nowhere.</summary>
    public string? Metrics { get; set; }

    /// <summary>The CPU the dataplane thread is pinned to; null leaves it to the scheduler.</summary>
    public int? DataplaneCpu { get; set; }

    /// <summary>Never sleep when idle (spin and yield only): lowest latency, a whole core always busy.</summary>
    public bool BusyPoll { get; set; }

    public string ResolvedSocketPath => ControlProtocol.ResolveListenPath(SocketPath);
}
