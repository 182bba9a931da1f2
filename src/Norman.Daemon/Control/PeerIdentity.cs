using System.Globalization;
using System.Net.Sockets;

namespace Norman.Daemon.Control;

/// <summary>
/// Who is at the other end of a control connection, as the kernel tells it (SO_PEERCRED) and /proc describes
/// the process — never what the caller says about itself.
/// </summary>
public sealed record PeerIdentity(int Pid, int Uid, int Gid, string ProcessName, string CommandLine, string Cgroup, bool CanBindPrivilegedPorts,
    bool CanAdminister = false, IReadOnlyList<int>? Groups = null)
{
    /// <summary>True when the process's primary or a supplementary group is <paramref name="gid"/>.</summary>
    public bool InGroup(int gid) => Gid == gid || (Groups?.Contains(gid) ?? false);

    private const int SolSocket = 1;
    private const int SoPeerCred = 17;
    private const int CapNetBindService = 10;
    private const int CapNetAdmin = 12;

    public bool IsRoot => Uid == 0;

    public static PeerIdentity Of(Socket connection)
    {
        Span<byte> credentials = stackalloc byte[12];
        connection.GetRawSocketOption(SolSocket, SoPeerCred, credentials);
        int pid = BitConverter.ToInt32(credentials);
        int uid = BitConverter.ToInt32(credentials[4..]);
        int gid = BitConverter.ToInt32(credentials[8..]);
        return FromProc(pid, uid, gid);
    }

    /// <summary>Reads the process's name, command line, cgroup and capabilities; a process gone meanwhile reads as empty.</summary>
    public static PeerIdentity FromProc(int pid, int uid, int gid)
    {
        string name = ReadProc(pid, "comm").TrimEnd('\n');
        string commandLine = ReadProc(pid, "cmdline").Replace('\0', ' ').TrimEnd();
        string cgroup = ReadProc(pid, "cgroup").Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Split(':', 3).LastOrDefault() ?? "";
        string status = ReadProc(pid, "status");
        // Changing the policy is network administration: root, or CAP_NET_ADMIN, as nft and tc require.
        return new PeerIdentity(pid, uid, gid, name, commandLine, cgroup, HasCapability(status, CapNetBindService),
            uid == 0 || HasCapability(status, CapNetAdmin), SupplementaryGroups(status));
    }

    private static bool HasCapability(string status, int capability)
    {
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal)
                && ulong.TryParse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong effective))
            {
                return (effective & (1UL << capability)) != 0;
            }
        }
        return false;
    }

    private static List<int> SupplementaryGroups(string status)
    {
        var groups = new List<int>();
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith("Groups:", StringComparison.Ordinal))
            {
                foreach (var word in line[7..].Split(' ', '\t', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (int.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out int group))
                    {
                        groups.Add(group);
                    }
                }
            }
        }
        return groups;
    }

    private static string ReadProc(int pid, string file)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/{file}");
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
