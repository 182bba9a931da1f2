using System.Net.NetworkInformation;
using System.Net.Sockets;
using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon;

/// <summary>
/// Who Norman is on an interface it shares with the kernel (an xdp port): the interface's own MAC, and either an address
/// of its own that the kernel does not have there, or, with --share-address, the kernel's address itself.
/// </summary>
public static class XdpHostAddress
{
    /// <summary>The address and prefix to use; on other ports, --address as given.</summary>
    public static (NetAddress Address, int Prefix) Resolve(DaemonOptions options)
    {
        if (Device(options) is not { } device)
        {
            if (options.ShareAddress)
            {
                throw new ArgumentException("--share-address is for an xdp port (--port xdp:INTERFACE): on the others Norman has the wire to itself.");
            }
            return HostInterface.ParseCidr(options.Address);
        }
        var kernels = KernelAddresses(device);
        if (options.ShareAddress)
        {
            if (kernels.Count == 0)
            {
                throw new ArgumentException($"--share-address uses the kernel's address on {device}, and it has none: give it one " +
                    $"(`ip addr add 192.0.2.1/24 dev {device}`), or run Norman with an address of its own (--address, without --share-address).");
            }
            if (options.Address == DaemonOptions.DefaultAddress)
            {
                return kernels[0];
            }
            var given = HostInterface.ParseCidr(options.Address);
            return kernels.Contains(given) ? given : throw new ArgumentException(
                $"With --share-address Norman is the kernel's {string.Join(" or ", kernels.Select(k => $"{k.Address}/{k.Prefix}"))} on {device}; " +
                $"{options.Address} is not one of them (leave --address out to take the first).");
        }
        var own = HostInterface.ParseCidr(options.Address);
        if (kernels.Any(k => k.Address == own.Address))
        {
            throw new ArgumentException($"{own.Address} is the kernel's address on {device}: give Norman one of its own (--address), or " +
                "share the kernel's with --share-address (then Norman takes only the ports its sockets hold).");
        }
        return own;
    }

    /// <summary>On an xdp port, the interface's MAC (Norman answers ARP with it); null on other ports.</summary>
    public static MacAddress? Mac(DaemonOptions options)
    {
        if (Device(options) is not { } device)
        {
            return null;
        }
        Interfaces.Index(device, "an xdp port");
        var own = MacAddress.Parse(Interfaces.Mac(device));
        if (options.Mac is { } given && MacAddress.Parse(given) != own)
        {
            throw new ArgumentException($"An xdp port uses {device}'s own MAC ({own}), which its NIC receives without promiscuous mode; " +
                $"leave --mac out (or give {own}).");
        }
        return own;
    }

    /// <summary>The interface of an xdp port (`xdp:eth1:0-3` → eth1); null for other ports.</summary>
    public static string? Device(DaemonOptions options) =>
        options.Port.StartsWith("xdp:", StringComparison.Ordinal) ? Dataplane.Ports.Xdp.XdpPort.Parse(options.Port["xdp:".Length..]).Device : null;

    private static List<(NetAddress Address, int Prefix)> KernelAddresses(string device) =>
        NetworkInterface.GetAllNetworkInterfaces().Where(i => i.Name == device)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Where(a => a.Address.AddressFamily == AddressFamily.InterNetwork)
            .Select(a => (NetAddress.From(a.Address), a.PrefixLength)).ToList();
}
