using System.Globalization;
using System.Net;
using Norman.Core.Protocol;

namespace Norman.Cli.Commands;

/// <summary>
/// The Linux kernel's own UDP and TCP sockets in this network namespace, read from /proc/net/{udp,udp6,tcp,tcp6} as
/// ss reads them, in the shape of Norman's socket list so that `norman ss --kernel` shows both stacks in one table.
/// The owning process is found as ss -p finds it: by the socket's inode among /proc/PID/fd links, for the processes
/// whose fds the caller may read.
/// </summary>
public static class KernelSockets
{
    private static readonly string[] TcpStates =
        ["", "ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "UNCONN", "CLOSE-WAIT", "LAST-ACK", "LISTEN", "CLOSING"];

    public static List<SocketInfo> Read(bool processes)
    {
        var owners = processes ? Owners() : [];
        var sockets = new List<SocketInfo>();
        foreach (var (file, protocol) in new[] { ("udp", "udp"), ("udp6", "udp"), ("tcp", "tcp"), ("tcp6", "tcp") })
        {
            string path = $"/proc/net/{file}";
            if (!File.Exists(path))
            {
                continue;
            }
            foreach (var line in File.ReadLines(path).Skip(1))
            {
                if (Parse(line, protocol) is { } socket)
                {
                    if (owners.TryGetValue(socket.Id, out var owner))
                    {
                        (socket.Pid, socket.ProcessName) = owner;
                    }
                    sockets.Add(socket);
                }
            }
        }
        return sockets;
    }

    /// <summary>One line of /proc/net/udp or tcp: "sl local rem st tx_queue:rx_queue tr tm->when retrnsmt uid timeout inode …".</summary>
    public static SocketInfo? Parse(string line, string protocol)
    {
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 10 || !fields[0].EndsWith(':'))
        {
            return null;
        }
        var (localAddress, localPort) = Endpoint(fields[1]);
        var (remoteAddress, remotePort) = Endpoint(fields[2]);
        int state = int.Parse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var queues = fields[4].Split(':');
        return new SocketInfo
        {
            // The inode: the kernel's socket identity, as ss prints with -e.
            Id = long.Parse(fields[9], CultureInfo.InvariantCulture),
            Protocol = protocol,
            // UDP has no states but "connected" (ESTABLISHED) and not (CLOSE), which ss shows as ESTAB and UNCONN.
            State = state < TcpStates.Length ? TcpStates[state] : state.ToString(CultureInfo.InvariantCulture),
            LocalAddress = localAddress,
            LocalPort = localPort,
            RemoteAddress = remoteAddress,
            RemotePort = remotePort,
            SendQ = long.Parse(queues[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            RecvQ = long.Parse(queues[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            Uid = int.Parse(fields[7], CultureInfo.InvariantCulture),
        };
    }

    /// <summary>"0100007F:0035" → 127.0.0.1, 53: the address in the kernel's byte order, 32 bits at a time.</summary>
    private static (string Address, int Port) Endpoint(string text)
    {
        var parts = text.Split(':');
        var bytes = new byte[parts[0].Length / 2];
        for (int word = 0; word < bytes.Length / 4; word++)
        {
            uint value = uint.Parse(parts[0].AsSpan(word * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            BitConverter.TryWriteBytes(bytes.AsSpan(word * 4), value); // host order, as the kernel wrote it
        }
        var address = new IPAddress(bytes);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        return (address.ToString(), int.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
    }

    /// <summary>Socket inode → (pid, process name), from the /proc/PID/fd links the caller may read.</summary>
    private static Dictionary<long, (int Pid, string Name)> Owners()
    {
        var owners = new Dictionary<long, (int, string)>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out int pid))
            {
                continue;
            }
            try
            {
                string name = File.ReadAllText($"{directory}/comm").Trim();
                foreach (var fd in Directory.EnumerateFileSystemEntries($"{directory}/fd"))
                {
                    string? target = new FileInfo(fd).LinkTarget;
                    if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal)
                        && long.TryParse(target.AsSpan(8, target.Length - 9), out long inode))
                    {
                        owners.TryAdd(inode, (pid, name));
                    }
                }
            }
            catch (Exception error) when (error is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or another user's: ss -p shows no process for those either.
            }
        }
        return owners;
    }
}
