namespace Norman.Integration.Tests;

/// <summary>What the daemon (this process) holds for sockets: open memfds and mappings of them, read from /proc.</summary>
public readonly record struct DaemonResources(int Memfds, int Mappings)
{
    public static DaemonResources Measure()
    {
        int memfds = 0;
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                if ((new FileInfo(fd).LinkTarget ?? "").StartsWith("/memfd:norman", StringComparison.Ordinal))
                {
                    memfds++;
                }
            }
            catch (IOException)
            {
                // An fd closed while we listed them.
            }
        }
        int mappings = File.ReadLines("/proc/self/maps").Count(line => line.Contains("/memfd:norman", StringComparison.Ordinal));
        return new DaemonResources(memfds, mappings);
    }
}
