using Norman.Daemon;

namespace Norman.Integration.Tests;

/// <summary>The systemd unit lets the daemon write where its own help tells the administrator to put files.</summary>
public sealed class PackagingTests
{
    [Fact]
    public void The_unit_leaves_the_policy_file_directory_that_help_suggests_writable()
    {
        var unit = File.ReadAllLines(Path.Combine(Norman.Soak.SourceTree.Root, "packaging", "normand.service"))
            .Where(l => l.Contains('=') && !l.TrimStart().StartsWith('#'))
            .Select(l => (Key: l[..l.IndexOf('=')].Trim(), Value: l[(l.IndexOf('=') + 1)..].Trim()))
            .ToList();
        var writable = unit.Where(e => e.Key == "ReadWritePaths").SelectMany(e => e.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Concat(unit.Where(e => e.Key == "StateDirectory").Select(e => "/var/lib/" + e.Value))
            .Concat(unit.Where(e => e.Key == "RuntimeDirectory").Select(e => "/run/" + e.Value))
            .ToList();
        Assert.Contains(("ProtectSystem", "strict"), unit); // what makes the rest matter

        string help = DaemonSettings.All.Single(s => s.Name == "policy-file").Description;
        string suggested = System.Text.RegularExpressions.Regex.Match(help, @"/var/lib/\S+?(?=\)|$)").Value;
        Assert.NotEqual("", suggested);
        Assert.Contains(writable, path => suggested.StartsWith(path.TrimEnd('/') + "/", StringComparison.Ordinal));
        string socketDirectory = Path.GetDirectoryName(Norman.Core.Protocol.ControlProtocol.DefaultSocketPath)!;
        Assert.Contains(writable, path => socketDirectory.StartsWith(path, StringComparison.Ordinal));
    }
}
