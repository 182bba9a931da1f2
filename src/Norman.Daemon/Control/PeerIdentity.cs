using System.Buffers.Binary;
using System.Net.Sockets;

namespace Norman.Daemon.Control;

/// <summary>
/// Who is at the other end of a control connection. What decides privilege comes from the kernel and is fixed when
/// the process called connect(2): its pid, effective uid and gid (SO_PEERCRED) and its supplementary groups
/// (SO_PEERGROUPS). Nothing about privilege is read later by pid: by then the pid may run another program (a
/// setuid one it exec'd, while a forked child holds the connection). What /proc describes — the program's
/// executable, its process name, command line and cgroup — is read once, when the daemon accepts the connection,
/// and serves names and matches only. Capabilities are not consulted: the kernel does not record them at connect.
/// </summary>
public sealed record PeerIdentity(int Pid, int Uid, int Gid, string ProcessName, string CommandLine, string Cgroup,
    IReadOnlyList<int>? Groups = null, string Executable = "")
{
    /// <summary>A command line longer than this is cut: it only labels the socket, and every answer has a size bound.</summary>
    public const int MaxCommandLineLength = 1024;

    private const int SolSocket = 1;
    private const int SoPeerCred = 17;
    private const int SoPeerGroups = 59;

    /// <summary>True when the process's primary or a supplementary group (as of connect) is <paramref name="gid"/>.</summary>
    public bool InGroup(int gid) => Gid == gid || (Groups?.Contains(gid) ?? false);

    /// <summary>Effective uid 0 when it connected.</summary>
    public bool IsRoot => Uid == 0;

    /// <summary>
    /// What `app NAME` matches: the file name of the program the process runs, fixed when it exec'd it (the process
    /// name ss shows can be changed by the process itself, with prctl(PR_SET_NAME)). The process name stands in
    /// only where the daemon cannot read the executable's link (a process of another user, to a daemon not root).
    /// </summary>
    public string AppName => Executable.Length > 0 ? Path.GetFileName(Executable) : ProcessName;

    /// <summary>The identity of the process that connected at the other end of <paramref name="connection"/>.</summary>
    public static PeerIdentity Of(Socket connection)
    {
        Span<byte> credentials = stackalloc byte[12];
        connection.GetRawSocketOption(SolSocket, SoPeerCred, credentials);
        int pid = BinaryPrimitives.ReadInt32LittleEndian(credentials);
        int uid = BinaryPrimitives.ReadInt32LittleEndian(credentials[4..]);
        int gid = BinaryPrimitives.ReadInt32LittleEndian(credentials[8..]);
        return FromProc(pid, uid, gid, PeerGroups(connection));
    }

    /// <summary>
    /// The kernel-given credentials with the program's names from /proc; a process gone meanwhile reads as empty names.
    /// </summary>
    public static PeerIdentity FromProc(int pid, int uid, int gid, IReadOnlyList<int> groups)
    {
        string name = ReadProc(pid, "comm").TrimEnd('\n');
        string commandLine = ReadProc(pid, "cmdline").Replace('\0', ' ').TrimEnd();
        if (commandLine.Length > MaxCommandLineLength)
        {
            commandLine = commandLine[..MaxCommandLineLength];
        }
        string cgroup = ReadProc(pid, "cgroup").Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Split(':', 3).LastOrDefault() ?? "";
        return new PeerIdentity(pid, uid, gid, name, commandLine, cgroup, groups, ReadExecutable(pid));
    }

    /// <summary>The supplementary groups the process had when it connected (SO_PEERGROUPS, Linux 4.13).</summary>
    private static int[] PeerGroups(Socket connection)
    {
        // NGROUPS_MAX is 65,536; ask for a few first, then for as many as the kernel says there are.
        for (int capacity = 64; capacity <= 65536; capacity *= 32)
        {
            var buffer = new byte[capacity * sizeof(int)];
            try
            {
                int length = connection.GetRawSocketOption(SolSocket, SoPeerGroups, buffer);
                var groups = new int[length / sizeof(int)];
                for (int i = 0; i < groups.Length; i++)
                {
                    groups[i] = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(i * sizeof(int)));
                }
                return groups;
            }
            catch (SocketException error) when (error.NativeErrorCode == 34 /* ERANGE: more groups than the buffer */)
            {
            }
        }
        return [];
    }

    private static string ReadExecutable(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "";
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return "";
        }
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
