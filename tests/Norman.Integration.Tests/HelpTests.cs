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

    private static IEnumerable<Command> Roots() =>
    [
        UpCommand.Create(), SsCommand.Create(), FilterCommand.Create(), QosCommand.Create(), StatsCommand.Create(), TopCommand.Create(),
        TraceCommand.Create(), CaptureCommand.Create(), DemoCommand.Create(),
    ];

    private static IEnumerable<(string Path, Command Command)> All(Command command) => All(command, command.Name);

    private static IEnumerable<(string Path, Command Command)> All(Command command, string path) =>
        new[] { (path, command) }.Concat(command.Subcommands.SelectMany(c => All(c, $"{path} {c.Name}")));
}
