namespace Norman.Daemon.Policy;

/// <summary>
/// Program names (and cgroups, and executables' paths) as small numbers, so that an `app NAME` match is one integer compare per packet. A name gets its
/// number the first time a socket or a rule mentions it, and keeps it for the daemon's life.
/// </summary>
public sealed class AppNames
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

    /// <summary>Cgroup paths share the numbering with process names, kept apart by this prefix.</summary>
    public static string CgroupKey(string path) => "cgroup:" + path;

    /// <summary>Executables' paths too (an `exe PATH` match), under this prefix.</summary>
    public static string ExecutableKey(string path) => "exe:" + path;

    /// <summary>The name behind a number ("?" for none), for logs.</summary>
    public string NameOf(int id)
    {
        lock (_ids)
        {
            foreach (var (name, value) in _ids)
            {
                if (value == id)
                {
                    return name;
                }
            }
            return "?";
        }
    }

    public int IdOf(string name)
    {
        lock (_ids)
        {
            if (!_ids.TryGetValue(name, out int id))
            {
                id = _ids.Count;
                _ids[name] = id;
            }
            return id;
        }
    }
}
