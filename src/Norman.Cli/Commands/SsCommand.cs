using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Norman.Client;
using Norman.Core.Protocol;

namespace Norman.Cli.Commands;

/// <summary>`norman ss`: Norman's sockets, with ss's options, columns and filter, so "who listens on port 80?" has an answer.</summary>
public static class SsCommand
{
    public static Command Create()
    {
        var socket = new Option<string?>("--socket", "-S") { Description = "The daemon's control socket (default: $NORMAN_SOCKET, else /run/norman/norman.sock)." };
        var listening = new Option<bool>("--listening", "-l") { Description = "Display only listening sockets (for UDP: unconnected ones)." };
        var all = new Option<bool>("--all", "-a") { Description = "Display listening and non-listening sockets." };
        var udp = new Option<bool>("--udp", "-u") { Description = "Display UDP sockets." };
        var tcp = new Option<bool>("--tcp", "-t") { Description = "Display TCP sockets." };
        var processes = new Option<bool>("--processes", "-p") { Description = "Show the process using each socket." };
        var numeric = new Option<bool>("--numeric", "-n") { Description = "Do not resolve port numbers to service names." };
        var extended = new Option<bool>("--extended", "-e") { Description = "Show the owner's uid and packet counters." };
        var info = new Option<bool>("--info", "-i") { Description = "Show each socket's pipes (occupancy and size), wake-ups, drops, last activity and QoS class, on a line of its own." };
        var noHeader = new Option<bool>("--no-header", "-H") { Description = "Suppress the header line." };
        var json = new Option<bool>("--json") { Description = "Print the sockets as JSON." };
        var kernel = new Option<bool>("--kernel") { Description = "Also list the Linux kernel's own UDP and TCP sockets (from /proc/net), with a Path column: which stack each is on." };
        var filter = new Argument<string[]>("FILTER") { Description = "An ss filter, e.g. sport = :80, dport != :53, src 198.18.0.1.", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("ss", "Show Norman's sockets, as ss shows the kernel's.\n\nExamples:\n  norman ss -lp                 # who listens on which port\n  norman ss -lpn sport = :80    # who listens on port 80\n  norman ss -lpn --kernel sport = :80   # on either stack\n  norman ss -a --json")
        {
            socket, listening, all, udp, tcp, processes, numeric, extended, info, noHeader, json, kernel, filter,
        };
        command.SetAction(result =>
        {
            SsFilter predicate;
            try
            {
                predicate = SsFilter.Parse(result.GetValue(filter) ?? []);
            }
            catch (FormatException error)
            {
                Console.Error.WriteLine($"norman ss: {error.Message}");
                return 2;
            }
            bool withKernel = result.GetValue(kernel);
            List<SocketInfo> sockets;
            string? daemonAddress = null;
            try
            {
                using var control = ControlChannel.Connect(result.GetValue(socket));
                sockets = control.CallPages(new ControlRequest { Op = ControlProtocol.Ops.Sockets }).SelectMany(page => page.Sockets ?? []).ToList();
                if (withKernel)
                {
                    daemonAddress = control.Call(new ControlRequest { Op = ControlProtocol.Ops.Hello }).Daemon?.Address.Split('/')[0];
                }
            }
            catch (NormanException error) when (withKernel)
            {
                Console.Error.WriteLine($"norman ss: {error.Message} Showing the kernel's sockets only.");
                sockets = [];
            }
            catch (NormanException error)
            {
                Console.Error.WriteLine($"norman ss: {error.Message}");
                return 1;
            }
            if (withKernel)
            {
                sockets.ForEach(s => s.Path = "norman");
                var theirs = KernelSockets.Read(result.GetValue(processes));
                // Sharing the kernel's address (an xdp port's --share-address), the daemon holds each of its sockets'
                // ports in the kernel too, by a socket of its own bound to that address: the same port, listed once, as Norman's.
                theirs.RemoveAll(k => k.LocalAddress == daemonAddress && sockets.Any(n => n.Protocol == k.Protocol && n.LocalPort == k.LocalPort));
                theirs.ForEach(s => s.Path = "kernel");
                sockets.AddRange(theirs);
            }
            bool showAll = result.GetValue(all);
            bool onlyListening = result.GetValue(listening);
            bool wantUdp = result.GetValue(udp), wantTcp = result.GetValue(tcp);
            var shown = sockets.Where(s =>
                    (showAll || (onlyListening ? s.State == "UNCONN" || s.State == "LISTEN" : s.State != "UNCONN" && s.State != "LISTEN"))
                    && ((!wantUdp && !wantTcp) || (wantUdp && s.Protocol == "udp") || (wantTcp && s.Protocol == "tcp"))
                    && predicate.Matches(s))
                .ToList();
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(shown, ControlJson.Default.ListSocketInfo));
                return 0;
            }
            Console.Write(Format(shown, result.GetValue(processes), result.GetValue(numeric), result.GetValue(extended), !result.GetValue(noHeader),
                result.GetValue(info)));
            return 0;
        });
        return command;
    }

    /// <summary>ss's columns: Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process.</summary>
    public static string Format(IReadOnlyList<SocketInfo> sockets, bool processes, bool numeric, bool extended, bool header, bool info = false)
    {
        var rows = new List<string[]>();
        bool paths = sockets.Any(s => s.Path is not null);
        if (header)
        {
            rows.Add([.. paths ? ["Path"] : Array.Empty<string>(), "Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port",
                processes || extended ? "Process" : ""]);
        }
        foreach (var s in sockets)
        {
            var last = new StringBuilder();
            if (processes && s.Pid != 0)
            {
                last.Append(CultureInfo.InvariantCulture, $"users:((\"{s.ProcessName}\",pid={s.Pid}))");
            }
            if (extended)
            {
                last.Append(CultureInfo.InvariantCulture, $"{(last.Length > 0 ? " " : "")}uid:{s.Uid} rx:{s.RxPackets} tx:{s.TxPackets}");
                foreach (var (reason, count) in s.Drops)
                {
                    last.Append(CultureInfo.InvariantCulture, $" drop_{reason}:{count}");
                }
            }
            rows.Add([
                .. paths ? [s.Path ?? ""] : Array.Empty<string>(),
                s.Protocol, s.State,
                s.RecvQ.ToString(CultureInfo.InvariantCulture), s.SendQ.ToString(CultureInfo.InvariantCulture),
                $"{Bracketed(s.LocalAddress)}:{PortName(s.LocalPort, s.Protocol, numeric)}",
                s.RemotePort == 0 ? (s.LocalAddress.Contains(':') ? "[::]:*" : "0.0.0.0:*") : $"{Bracketed(s.RemoteAddress)}:{PortName(s.RemotePort, s.Protocol, numeric)}",
                last.ToString(),
            ]);
        }
        var widths = new int[rows.Count == 0 ? 0 : rows.Max(r => r.Length)];
        foreach (var row in rows)
        {
            for (int c = 0; c < row.Length; c++)
            {
                widths[c] = Math.Max(widths[c], row[c].Length);
            }
        }
        var text = new StringBuilder();
        for (int r = 0; r < rows.Count; r++)
        {
            var row = rows[r];
            var line = new StringBuilder();
            for (int c = 0; c < row.Length; c++)
            {
                line.Append(row[c].PadRight(widths[c]));
                line.Append(c < row.Length - 1 ? "  " : "");
            }
            text.AppendLine(line.ToString().TrimEnd());
            int index = header ? r - 1 : r;
            if (info && index >= 0 && sockets[index].Path != "kernel")
            {
                text.Append('\t').AppendLine(Detail(sockets[index]));
            }
        }
        return text.ToString();
    }

    /// <summary>
    /// ss -i's second line: for a Norman socket, its pipes, wake-ups, drops, last activity and QoS class; for a TCP
    /// connection, what its application's stack reports (RTO, smoothed RTT, MSS, congestion window, retransmissions).
    /// </summary>
    private static string Detail(SocketInfo s)
    {
        static string Ago(long milliseconds) => milliseconds < 0 ? "never" : string.Create(CultureInfo.InvariantCulture, $"{milliseconds}ms ago");
        var detail = new StringBuilder();
        if (s.Tcp is { } tcp)
        {
            // A connection: what its application's stack reports, in ss -ti's words (cwnd in segments, times in ms).
            int segments = tcp.Mss > 0 ? (int)(tcp.CongestionWindowBytes / tcp.Mss) : 0;
            if (tcp.Timestamps)
            {
                detail.Append("ts ");
            }
            if (tcp.Sack)
            {
                detail.Append("sack ");
            }
            if (tcp.CongestionControl is { } algorithm)
            {
                detail.Append(algorithm).Append(' ');
            }
            detail.Append(CultureInfo.InvariantCulture, $"rto:{tcp.RtoMilliseconds} rtt:{tcp.RttMicroseconds / 1000.0:0.###} mss:{tcp.Mss} cwnd:{segments} retrans:{tcp.Retransmits}");
            if (tcp.ChallengeAcks > 0 || tcp.ResetsIgnored > 0)
            {
                detail.Append(CultureInfo.InvariantCulture, $" challenge_acks:{tcp.ChallengeAcks} rst_ignored:{tcp.ResetsIgnored}");
            }
            return detail.ToString();
        }
        detail.Append(CultureInfo.InvariantCulture, $"pipe rx:{s.RecvQ}/{s.SlotCount} tx:{s.SendQ}/{s.SlotCount} slot:{s.SlotSize}B");
        detail.Append(CultureInfo.InvariantCulture, $" wakeups:{s.Wakeups} last_rx:{Ago(s.LastReceiveMilliseconds)} last_tx:{Ago(s.LastSendMilliseconds)}");
        detail.Append(CultureInfo.InvariantCulture, $" class:{s.QosClass ?? "-"}");
        if (s.TxThrottled > 0)
        {
            detail.Append(CultureInfo.InvariantCulture, $" tx_throttled:{s.TxThrottled}");
        }
        if (s.TcpChallengeAcks > 0 || s.TcpResetsIgnored > 0)
        {
            detail.Append(CultureInfo.InvariantCulture, $" challenge_acks:{s.TcpChallengeAcks} rst_ignored:{s.TcpResetsIgnored}");
        }
        foreach (var (reason, count) in s.Drops)
        {
            detail.Append(CultureInfo.InvariantCulture, $" drop_{reason}:{count}");
        }
        return detail.ToString();
    }

    /// <summary>An IPv6 address in brackets before its port, as ss writes it: [::1]:53.</summary>
    private static string Bracketed(string address) => address.Contains(':') ? $"[{address}]" : address;

    private static string PortName(int port, string protocol, bool numeric) =>
        numeric ? port.ToString(CultureInfo.InvariantCulture) : ServiceNames.Lookup(port, protocol) ?? port.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Port → service name from /etc/services, as ss shows them without -n.</summary>
internal static class ServiceNames
{
    private static readonly Lazy<Dictionary<(int, string), string>> Table = new(Load);

    public static string? Lookup(int port, string protocol) => Table.Value.GetValueOrDefault((port, protocol));

    private static Dictionary<(int, string), string> Load()
    {
        var table = new Dictionary<(int, string), string>();
        if (!File.Exists("/etc/services"))
        {
            return table;
        }
        foreach (var line in File.ReadLines("/etc/services"))
        {
            var fields = line.Split('#')[0].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2)
            {
                continue;
            }
            var portProtocol = fields[1].Split('/');
            if (portProtocol.Length == 2 && int.TryParse(portProtocol[0], out int port))
            {
                table.TryAdd((port, portProtocol[1]), fields[0]);
            }
        }
        return table;
    }
}
