namespace Norman.Daemon.Control;

/// <summary>
/// `app NAME` matches the file name of the program a process runs (PeerIdentity.AppName), which the process cannot
/// change; ss shows the process name, which it can, and which differs where the program is reached by a link
/// (python3 runs /usr/bin/python3.11). An administrator who copies the name ss shows into a rule would get a rule
/// that silently matches nothing: the answer says so, and what to write instead.
/// </summary>
public sealed partial class ControlPlane
{
    /// <summary>A note for a rule or match naming <c>app NAME</c> (in <paramref name="words"/>, or <paramref name="app"/>) that no socket's program has but some process name does.</summary>
    private List<string>? AppNameNotes(IReadOnlyList<string>? words, string? app = null)
    {
        if (app is null && words is not null)
        {
            int at = words.ToList().IndexOf("app");
            app = at >= 0 && at + 1 < words.Count ? words[at + 1] : null;
        }
        if (app is null)
        {
            return null;
        }
        var owners = sockets.Snapshot().Select(socket => socket.Owner).ToList();
        if (owners.Any(owner => owner.AppName == app) || owners.FirstOrDefault(owner => owner.ProcessName == app) is not { } namesake)
        {
            return null;
        }
        return [$"no Norman socket's program is named {app}, but process {namesake.Pid} ({app}, as ss shows it) runs {namesake.AppName}: " +
            $"app matches the program's file name, so write 'app {namesake.AppName}' (or 'exe {namesake.Executable}') to match it"];
    }
}
