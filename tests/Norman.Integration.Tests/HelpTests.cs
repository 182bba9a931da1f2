using System.CommandLine;
using Norman.Cli.Commands;

namespace Norman.Integration.Tests;

public sealed class HelpTests
{
    public static TheoryData<string> Commands => [.. Roots().SelectMany(All).Select(c => c.Path)];

    /// <summary>Every command and subcommand's --help shows at least one example of its use.</summary>
    [Theory]
    [MemberData(nameof(Commands))]
    public void Every_help_text_has_an_example(string path)
    {
        var command = Roots().SelectMany(All).Single(c => c.Path == path).Command;
        Assert.Contains("Example", command.Description ?? "");
    }

    /// <summary>The jq example in `norman stats --help` reads a key that `norman stats --json` has (it named one that did not exist).</summary>
    [Fact]
    public async Task The_jq_example_in_stats_help_reads_a_key_the_json_has()
    {
        var example = System.Text.RegularExpressions.Regex.Match(StatsCommand.Create().Description ?? "", @"--json \| jq '\.([a-z_.]+)'");
        Assert.True(example.Success, "stats --help has no jq example");
        await using var daemon = new DaemonFixture();
        var start = new System.Diagnostics.ProcessStartInfo(AppProcess.BesideTests("norman"), ["stats", "--socket", daemon.SocketPath, "--json"])
        {
            RedirectStandardOutput = true,
        };
        using var stats = System.Diagnostics.Process.Start(start)!;
        using var json = System.Text.Json.JsonDocument.Parse(await stats.StandardOutput.ReadToEndAsync());
        var element = json.RootElement;
        foreach (string key in example.Groups[1].Value.Split('.'))
        {
            Assert.True(element.TryGetProperty(key, out element), $"`norman stats --json` has no '{key}' on the way to .{example.Groups[1].Value}");
        }
        Assert.Equal(System.Text.Json.JsonValueKind.Number, element.ValueKind);
    }

    private static IEnumerable<Command> Roots() =>
    [
        UpCommand.Create(), SsCommand.Create(), FilterCommand.Create(), QosCommand.Create(), StatsCommand.Create(), TopCommand.Create(),
        TraceCommand.Create(), CaptureCommand.Create(), DemoCommand.Create(),
    ];

    private static IEnumerable<(string Path, Command Command)> All(Command command) => All(command, command.Name);

    private static IEnumerable<(string Path, Command Command)> All(Command command, string path) =>
        new[] { (path, command) }.Concat(command.Subcommands.SelectMany(c => All(c, $"{path} {c.Name}")));
}
