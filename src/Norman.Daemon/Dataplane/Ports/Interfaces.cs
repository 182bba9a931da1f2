using System.Globalization;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>What a port needs to know of an existing interface, from sysfs.</summary>
public static class Interfaces
{
    public static int Index(string device, string what)
    {
        string path = $"/sys/class/net/{device}/ifindex";
        if (device.Length == 0 || device.Contains('/') || !File.Exists(path))
        {
            throw new ArgumentException($"There is no interface '{device}' (see `ip link`). {char.ToUpperInvariant(what[0])}{what[1..]} attaches to an existing one.");
        }
        return int.Parse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture);
    }

    public static int Mtu(string device) => int.Parse(File.ReadAllText($"/sys/class/net/{device}/mtu").Trim(), CultureInfo.InvariantCulture);

    /// <summary>The interface's own MAC.</summary>
    public static string Mac(string device) => File.ReadAllText($"/sys/class/net/{device}/address").Trim();

    public static int RxQueues(string device)
    {
        string directory = $"/sys/class/net/{device}/queues";
        return Directory.Exists(directory) ? Math.Max(1, Directory.GetDirectories(directory, "rx-*").Length) : 1;
    }
}
