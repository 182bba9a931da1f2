using System.Diagnostics;
using System.Globalization;
using System.Net;
using Norman.Client;
using Norman.Core.Packets;

namespace Norman.Bench;

/// <summary>
/// Scenario D and Norman's afpacket mode, in one run: two network namespaces joined by a veth pair, a UDP
/// receiver (the kernel's, recvmmsg) in one, and in the other either the kernel's sendmmsg or a Norman
/// application sending through a daemon attached to the veth by AF_PACKET. Needs root; skipped otherwise.
/// </summary>
public static class RealWireScenarios
{
    internal const string SenderAddress = "198.18.3.1";
    internal const string ReceiverAddress = "198.18.3.2";
    internal const string NormanAddress = "198.18.3.3";
    private const int Port = 9000;

    public static string? WhyNot() =>
        Environment.UserName != "root" ? "needs root to create network namespaces"
        : !File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip") && !File.Exists("/bin/ip") ? "needs iproute2's ip"
        : null;

    /// <summary>Which of the kernel's firewalls holds the receiver's rules.</summary>
    public enum KernelFirewall
    {
        None,
        Iptables,
        Nftables,
    }

    /// <summary>
    /// Runs one sender against the kernel receiver; returns datagrams received per second. With
    /// <paramref name="rules"/>, the receiver's INPUT chain first holds that many rules the flow does not match.
    /// </summary>
    public static double Run(bool norman, int payload, double seconds, int rules = 0, KernelFirewall firewall = KernelFirewall.None)
    {
        string id = Guid.NewGuid().ToString("N")[..6];
        string senderNs = $"nrmb-s-{id}", receiverNs = $"nrmb-r-{id}", veth = $"nrmb{id}";
        try
        {
            CreateHosts(senderNs, receiverNs, veth);
            if (rules > 0)
            {
                LoadRules(receiverNs, rules, firewall);
            }
            string self = Environment.ProcessPath!;
            using var receiver = Start(receiverNs, self, "kernel-recv", Port.ToString(CultureInfo.InvariantCulture), (seconds + 1.5).ToString(CultureInfo.InvariantCulture));
            if (receiver.StandardOutput.ReadLine() != "ready")
            {
                throw new InvalidOperationException("the kernel receiver did not start");
            }
            string mode = norman ? "norman-send" : "kernel-send";
            using var sender = Start(senderNs, self, mode, veth + "s", ReceiverAddress, Port.ToString(CultureInfo.InvariantCulture),
                payload.ToString(CultureInfo.InvariantCulture), seconds.ToString(CultureInfo.InvariantCulture));
            string sent = sender.StandardOutput.ReadToEnd();
            sender.WaitForExit();
            string received = receiver.StandardOutput.ReadToEnd();
            receiver.WaitForExit();
            long count = long.Parse(received.Split(' ')[1], CultureInfo.InvariantCulture);
            Console.Error.WriteLine($"  {mode}: {sent.Trim()}, {received.Trim()}");
            return count / seconds;
        }
        finally
        {
            Try("netns", "del", senderNs);
            Try("netns", "del", receiverNs);
        }
    }

    /// <summary>
    /// Scenario E's kernel side: round trips of <paramref name="count"/> requests from one namespace to an echo server in
    /// the other, over veth, through the kernel's UDP on both ends.
    /// </summary>
    public static (double P50, double P99, double P999) KernelRoundTrips(int payload, int count)
    {
        string id = Guid.NewGuid().ToString("N")[..6];
        string senderNs = $"nrmb-s-{id}", receiverNs = $"nrmb-r-{id}", veth = $"nrmb{id}";
        try
        {
            CreateHosts(senderNs, receiverNs, veth);
            string self = Environment.ProcessPath!;
            using var echo = Start(receiverNs, self, "kernel-echo", Port.ToString(CultureInfo.InvariantCulture), "60");
            if (echo.StandardOutput.ReadLine() != "ready")
            {
                throw new InvalidOperationException("the kernel echo server did not start");
            }
            using var ping = Start(senderNs, self, "kernel-ping", ReceiverAddress, Port.ToString(CultureInfo.InvariantCulture),
                payload.ToString(CultureInfo.InvariantCulture), count.ToString(CultureInfo.InvariantCulture));
            string line = ping.StandardOutput.ReadToEnd().Trim();
            ping.WaitForExit();
            echo.Kill();
            echo.WaitForExit();
            return RoundTrips.Parse(line);
        }
        finally
        {
            Try("netns", "del", senderNs);
            Try("netns", "del", receiverNs);
        }
    }

    /// <summary>
    /// The sender side of Norman on a real wire: a daemon on the veth (<paramref name="kind"/>: afpacket or xdp), an
    /// application thread sending through it; <paramref name="destinationMac"/> when the destination answers no ARP (a
    /// counting sink).
    /// </summary>
    public static void NormanSend(string device, string destination, int port, int payload, double seconds, string kind = "afpacket",
        string? destinationMac = null)
    {
        Norman.Soak.BenchDaemon.With((daemon, unused) =>
        {
            if (destinationMac is not null)
            {
                var known = new Norman.Daemon.Dataplane.AddNeighbourCommand(NetAddress.Parse(destination), MacAddress.Parse(destinationMac));
                daemon.Engine.Post(known);
                known.Applied.GetAwaiter().GetResult();
            }
            using var socket = new NormanUdpSocket(daemon.SocketPath);
            socket.Connect(new IPEndPoint(IPAddress.Parse(destination), port));
            // One datagram and its answer-less ARP first, so the measured run starts resolved.
            socket.Send(new byte[payload]);
            var target = NetAddress.Parse(destination);
            long sent = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                for (int i = 0; i < 64 && !socket.GetSendBuffer().IsEmpty; i++)
                {
                    socket.CommitSendTo(payload, target, (ushort)port);
                    sent++;
                }
                socket.Flush();
            }
            Console.WriteLine($"sent {sent} (dataplane dropped {daemon.Engine.Counters.TotalDrops()}: {string.Join(", ", daemon.Engine.Counters.Snapshot().Where(c => c.Value > 0 && c.Key.StartsWith("drop", StringComparison.Ordinal)).Select(c => $"{c.Key} {c.Value}"))})");
            return sent;
        }, options => (options.Port, options.Address) = ($"{kind}:{device}", $"{NormanAddress}/24"));
    }

    /// <summary>Two namespaces joined by a veth pair (VETHs in the sender's, VETHr in the receiver's), addressed and up.</summary>
    internal static void CreateHosts(string senderNs, string receiverNs, string veth)
    {
        Ip("netns", "add", senderNs);
        Ip("netns", "add", receiverNs);
        Ip("link", "add", veth + "s", "netns", senderNs, "type", "veth", "peer", "name", veth + "r", "netns", receiverNs);
        Ip("-n", senderNs, "addr", "add", $"{SenderAddress}/24", "dev", veth + "s");
        Ip("-n", receiverNs, "addr", "add", $"{ReceiverAddress}/24", "dev", veth + "r");
        Ip("-n", senderNs, "link", "set", veth + "s", "up");
        Ip("-n", receiverNs, "link", "set", veth + "r", "up");
    }

    private static void LoadRules(string ns, int rules, KernelFirewall firewall)
    {
        var script = new System.Text.StringBuilder();
        string[] command;
        if (firewall == KernelFirewall.Iptables)
        {
            script.AppendLine("*filter");
            for (int i = 0; i < rules; i++)
            {
                script.AppendLine(CultureInfo.InvariantCulture, $"-A INPUT -p udp --sport {i / 50000 + 1} --dport {10000 + i % 50000} -j DROP");
            }
            script.AppendLine("COMMIT");
            command = ["ip", "netns", "exec", ns, "iptables-legacy-restore"];
        }
        else
        {
            script.AppendLine("table ip filter {\n chain input {\n  type filter hook input priority 0; policy accept;");
            for (int i = 0; i < rules; i++)
            {
                script.AppendLine(CultureInfo.InvariantCulture, $"  udp sport {i / 50000 + 1} udp dport {10000 + i % 50000} drop");
            }
            script.AppendLine(" }\n}");
            command = ["ip", "netns", "exec", ns, "nft", "-f", "-"];
        }
        var start = new ProcessStartInfo(command[0]) { RedirectStandardInput = true, RedirectStandardError = true };
        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        process.StandardInput.Write(script.ToString());
        process.StandardInput.Close();
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"loading {rules} {firewall} rules failed: {errors}");
        }
    }

    internal static Process Start(string ns, string program, params string[] arguments)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardInput = true };
        foreach (var argument in new[] { "netns", "exec", ns, program }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }
        return Process.Start(start)!;
    }

    internal static void Ip(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("ip", arguments) { RedirectStandardError = true })!;
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', arguments)}: {errors}");
        }
    }

    internal static void Try(params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("ip", arguments) { RedirectStandardError = true })!;
        process.StandardError.ReadToEnd();
        process.WaitForExit();
    }
}
