namespace Norman.Integration.Tests;

/// <summary>What the daemon (this process) holds for sockets: open memfds, mappings of them and eventfds, read from /proc.</summary>
public readonly record struct DaemonResources(int Memfds, int Mappings, int Eventfds)
{
    /// <summary>No more of anything than <paramref name="other"/>: nothing leaked since it was measured.</summary>
    public bool AtMost(DaemonResources other) => Memfds <= other.Memfds && Mappings <= other.Mappings && Eventfds <= other.Eventfds;

    public static DaemonResources Measure()
    {
        int memfds = 0;
        int eventfds = 0;
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                string target = new FileInfo(fd).LinkTarget ?? "";
                memfds += target.StartsWith("/memfd:norman", StringComparison.Ordinal) ? 1 : 0;
                eventfds += target == "anon_inode:[eventfd]" ? 1 : 0;
            }
            catch (IOException)
            {
                // An fd closed while we listed them.
            }
        }
        int mappings = File.ReadLines("/proc/self/maps").Count(line => line.Contains("/memfd:norman", StringComparison.Ordinal));
        return new DaemonResources(memfds, mappings, eventfds);
    }
}
