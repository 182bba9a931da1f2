using System.Globalization;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon;

/// <summary>
/// Every setting of the daemon, once: its name (the same in /etc/norman/norman.conf and as a `norman up` flag),
/// what it means, and how its text applies to <see cref="DaemonOptions"/>. The CLI builds its flags from this
/// list and the config file is read against it, so the two cannot drift apart.
/// </summary>
public static class DaemonSettings
{
    public const string DefaultConfigPath = "/etc/norman/norman.conf";

    /// <summary>A setting; <c>Repeatable</c>: the flag may be given several times, its values reaching <c>Apply</c> joined by commas, as the config file writes them.</summary>
    public sealed record Setting(string Name, string Description, bool IsSwitch, Action<DaemonOptions, string> Apply, bool Repeatable = false);

    public static readonly IReadOnlyList<Setting> All =
    [
        new("socket", "Control socket path (default: $NORMAN_SOCKET, else /run/norman/norman.sock).", false, (o, v) => o.SocketPath = v),
        new("port", "The wire: 'virtual' (an in-process wire to a simulated peer host; the default), 'wire:NAME' (a wire shared " +
            "with another daemon on this machine: two hosts, no root), 'tap:DEVICE' (a TAP device: the Linux kernel is the peer; " +
            "needs CAP_NET_ADMIN), 'afpacket:INTERFACE' (an existing interface through TPACKET_V2 rings; needs CAP_NET_RAW) or " +
            "'xdp:INTERFACE' (an existing interface bypassed through AF_XDP, shared with the kernel's stack: every queue, or " +
            "'xdp:eth1:0-3' some; needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW).", false, (o, v) => o.Port = v),
        new("share-address", "On an xdp port: use the kernel's own address on the interface (--address defaults to it) and take only " +
            "the UDP and TCP ports Norman's sockets hold; ARP, ping and every other port stay the kernel's, and each port Norman " +
            "holds is reserved from the kernel's applications, and the reverse.", true, (o, v) => o.ShareAddress = Switch(v)),
        new("netns", "For a TAP port: move the device into this network namespace (the peer's side).", false, (o, v) => o.Namespace = v),
        new("address", "This host's IPv4 address and prefix on the wire (default 198.18.0.1/24).", false, (o, v) => o.Address = v),
        new("address6", "IPv6 addresses for this host with their prefixes (e.g. fd66::1/64; /64 if none is given; several: repeat the flag, " +
            "or separate them with commas): it does neighbour discovery and ping for each, and carries applications' UDP and TCP over " +
            "IPv6. A link-local address made from the MAC (fe80::…, as Linux makes one) is added unless one is given.", false,
            (o, v) => o.Address6 = v, Repeatable: true),
        new("gateway6", "Next hop for IPv6 addresses outside --address6's prefix.", false, (o, v) => o.Gateway6 = v),
        new("accept-ra", "Take the IPv6 default router from the link's router advertisements (solicited at start), as Linux's " +
            "accept_ra does, when no --gateway6 is given.", true, (o, v) => o.AcceptRouterAdvertisements = Switch(v)),
        new("peer", "The simulated peer's address on a virtual port (default: the subnet's .2, e.g. 198.18.0.2; .1 when that is this host).", false, (o, v) => o.PeerAddress = v),
        new("gateway", "Next hop for addresses off the subnet.", false, (o, v) => o.Gateway = v),
        new("mac", "This host's MAC (default: the interface's own on an xdp port, else random and locally administered).", false, (o, v) => o.Mac = UnicastMac(v)),
        new("line-rate", "The port's line rate (any port: virtual, tap, afpacket); the dataplane sends no faster and QoS shapes to it. E.g. 10G, 1G, 100M; 0 for none (default 10G).", false, (o, v) => o.LineRateBitsPerSecond = LineRate.Parse(v)),
        new("wire-loss", "The share of frames this host's cable loses, each way, on any port, e.g. 1% (for testing transports, as netem would; default 0).", false,
            (o, v) => o.WireLoss = Percent(v)),
        new("wire-duplicate", "The share of frames the cable delivers twice, each way, e.g. 1% (for testing; default 0).", false,
            (o, v) => o.WireDuplicate = Percent(v)),
        new("wire-reorder", "The share of frames the cable holds back behind the next one, each way, e.g. 2% (for testing; default 0).", false,
            (o, v) => o.WireReorder = Percent(v)),
        new("wire-delay", "How long this host's cable holds each frame it sends, in milliseconds, e.g. 20 (a long path, as netem's delay; default 0, at most 1000).", false,
            (o, v) => o.WireDelayMilliseconds = Within(Integer(v), 0, 1000, "(milliseconds)")),
        new("slots", "Slots in each socket's RX and TX pipe, a power of two from 2 to 65536 (default 1024); an application may ask for others.", false,
            (o, v) => o.SlotCount = Norman.Core.Pipes.PipeLayout.IsValidGeometry(Integer(v), Norman.Core.Pipes.PipeLayout.DefaultSlotSize) ? Integer(v)
                : throw new ArgumentOutOfRangeException(nameof(v), "use a power of two from 2 to 65536")),
        new("conntrack-max", "Flows connection tracking holds at most, as nf_conntrack_max (default 65536; 113 bytes each, taken at start).", false,
            (o, v) => o.MaxTrackedFlows = Within(Integer(v), 1, 1 << 26, "flows")),
        new("max-sockets-per-uid", "Sockets one user may hold (default 4096).", false, (o, v) => o.MaxSocketsPerUid = Within(Integer(v), 1, 1 << 20, "sockets")),
        new("max-connections-per-uid", "Control connections one user may hold open (default 8192; each socket of the client library holds one).", false,
            (o, v) => o.MaxConnectionsPerUid = Within(Integer(v), 1, 1 << 20, "connections")),
        new("max-pipe-memory-per-uid", "Pipe memory one user's sockets may hold, e.g. 512M, 4G (default 1G; a default socket takes 4 MiB, " +
            "backed as its slots fill).", false, (o, v) => o.MaxPipeBytesPerUid = ByteSize(v)),
        new("socket-mode", "Permissions of the control socket, octal (default 0666: any user may open sockets, as with socket(2)).", false,
            (o, v) => o.SocketMode = (UnixFileMode)Convert.ToInt32(v, 8)),
        new("max-captures-per-uid", "Captures one ordinary user may run at once (default 16; administrators are held only by the daemon's descriptors).", false,
            (o, v) => o.MaxCapturesPerUid = Within(Integer(v), 1, 1 << 16, "captures")),
        new("admin-group", "A group (name or gid) whose members are administrators, besides root: they may change the policy, " +
            "capture everyone's traffic and bind ports below 1024. Membership counts as the process had it when it connected.", false,
            (o, v) => o.AdminGroup = GroupId(v)),
        new("policy-file", "Where the filter policy is saved on every change and restored from at start (e.g. /var/lib/norman/policy.rules).", false,
            (o, v) => o.PolicyFile = v),
        new("metrics", "Serve Prometheus metrics over HTTP at this address and port, e.g. 127.0.0.1:9469 (GET /metrics); off by default. " +
            "It shows every socket's process: keep it on loopback.", false, (o, v) => o.Metrics = v),
        new("cpu", "Pin the dataplane thread to this CPU (it busy-polls: give it a core of its own).", false,
            (o, v) => o.DataplaneCpu = Within(Integer(v), 0, Environment.ProcessorCount - 1, $"(this machine's CPUs, as nproc counts {Environment.ProcessorCount})")),
        new("busy-poll", "Never let the dataplane sleep when idle: lowest latency, one core always busy.", true, (o, v) => o.BusyPoll = Switch(v)),
        new("no-rx-checksum", "Do not verify UDP checksums on receive (as `ethtool -K rx off`).", true, (o, v) => o.VerifyChecksums = !Switch(v)),
        new("verbose", "Log every bind, close and refusal to stderr.", true, (o, v) => o.Verbose = Switch(v)),
    ];

    /// <summary>
    /// Reads a config file: one "name = value" a line, '#' starts a comment, names as the flags without "--".
    /// Returns the values by name; an unknown name or a line without '=' is refused with its line number.
    /// </summary>
    public static Dictionary<string, (string Value, int Line)> ReadFile(string path)
    {
        var values = new Dictionary<string, (string, int)>();
        int number = 0;
        foreach (var raw in File.ReadLines(path))
        {
            number++;
            string line = raw.Split('#', 2)[0].Trim();
            if (line.Length == 0)
            {
                continue;
            }
            int equals = line.IndexOf('=');
            if (equals <= 0)
            {
                throw new FormatException($"{path}:{number}: expected 'name = value', found '{raw.Trim()}'.");
            }
            string name = line[..equals].Trim();
            if (!All.Any(s => s.Name == name))
            {
                throw new FormatException($"{path}:{number}: unknown setting '{name}'. Known: {string.Join(", ", All.Select(s => s.Name))}.");
            }
            values[name] = (line[(equals + 1)..].Trim(), number);
        }
        return values;
    }

    /// <summary>Applies one setting's text, naming where it came from if the value is bad.</summary>
    public static void Apply(DaemonOptions options, string name, string value, string origin)
    {
        var setting = All.Single(s => s.Name == name);
        try
        {
            setting.Apply(options, value);
        }
        catch (Exception error) when (error is FormatException or OverflowException or ArgumentException)
        {
            throw new FormatException($"{origin}: bad value '{value}' for {name}: {error.Message}", error);
        }
    }

    /// <summary>A size in bytes with an optional binary suffix: 4096, 512K, 64M, 2G.</summary>
    private static long ByteSize(string text)
    {
        string digits = text.TrimEnd('K', 'k', 'M', 'm', 'G', 'g');
        int shift = text.Length == digits.Length ? 0 : char.ToUpperInvariant(text[^1]) switch { 'K' => 10, 'M' => 20, _ => 30 };
        long value = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        if (value <= 0 || value > (1L << 40) >> shift)
        {
            throw new ArgumentOutOfRangeException(nameof(text), "use 1 byte to 1T, e.g. 512M or 4G");
        }
        return value << shift;
    }

    /// <summary>A share as a percentage (1%, 0.5%) or a fraction (0.01), from 0 to 50%.</summary>
    private static double Percent(string text)
    {
        double value = text.EndsWith('%')
            ? double.Parse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture) / 100
            : double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        return value is >= 0 and <= 0.5 ? value : throw new ArgumentOutOfRangeException(nameof(text), "use 0% to 50%");
    }

    /// <summary>A MAC a host may have: not all zeros, not broadcast or multicast (the first octet's low bit).</summary>
    private static string UnicastMac(string text)
    {
        var mac = Norman.Core.Packets.MacAddress.Parse(text);
        return mac.Value == 0 || (mac.Value >> 40 & 1) != 0
            ? throw new FormatException("a host's MAC is unicast and not zero: the first octet even, like 02:00:00:00:00:01")
            : text;
    }

    /// <summary>A group by gid or by name, as /etc/group names it.</summary>
    private static int GroupId(string text)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int gid))
        {
            return gid;
        }
        foreach (var line in File.Exists("/etc/group") ? File.ReadLines("/etc/group") : [])
        {
            var fields = line.Split(':');
            if (fields.Length >= 3 && fields[0] == text && int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out gid))
            {
                return gid;
            }
        }
        throw new FormatException($"there is no group '{text}' in /etc/group: create it (groupadd {text}) or give a gid");
    }

    private static int Integer(string text) => int.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);

    private static int Within(int value, int low, int high, string what) => value >= low && value <= high ? value
        : throw new ArgumentOutOfRangeException(nameof(value), string.Create(CultureInfo.InvariantCulture, $"use {low} to {high} {what}"));

    private static bool Switch(string text) => text.ToLowerInvariant() switch
    {
        "yes" or "true" or "on" or "1" => true,
        "no" or "false" or "off" or "0" => false,
        _ => throw new FormatException("write yes or no"),
    };
}
