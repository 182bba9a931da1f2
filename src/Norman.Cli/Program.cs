using System.CommandLine;
using Norman.Cli.Commands;

var root = new RootCommand("Norman: kernel-bypass networking that the administrator still controls.")
{
    UpCommand.Create(),
    SsCommand.Create(),
    FilterCommand.Create(),
    QosCommand.Create(),
    StatsCommand.Create(),
    ConntrackCommand.Create(),
    TopCommand.Create(),
    TraceCommand.Create(),
    CaptureCommand.Create(),
    DemoCommand.Create(),
};
// "@name" is a set in a filter rule, not a response file: turn response files off.
return await root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null }).InvokeAsync();
