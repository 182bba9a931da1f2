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
// Ctrl-C cancels the running command, which then finishes as the Linux tool would (a capture prints its summary);
// on a loaded machine that can take longer than System.CommandLine's default 2 s before it ends the process itself.
return await root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null })
    .InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(10) });
