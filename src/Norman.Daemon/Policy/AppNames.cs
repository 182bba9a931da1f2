namespace Norman.Daemon.Policy;

/// <summary>
/// Process names as small numbers, so that an `app NAME` match is one integer compare per packet. A name gets its
/// number the first time a socket or a rule mentions it, and keeps it for the daemon's life.
/// </summary>
public sealed class AppNames
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);

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
