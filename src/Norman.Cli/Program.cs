using System.CommandLine;
using Norman.Cli;
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
    RunCommand.Create(),
};
// "@name" is a set in a filter rule, not a response file: turn response files off.
var parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (parsed.Errors.Count > 0 && args.Length > 0)
{
    // Bad usage: say what, and where the help is, as the Linux tools do, rather than the whole help after the error.
    return CommandErrors.ReportUsage(parsed.CommandResult.Command, parsed.Errors.Select(e => e.Message));
}
try
{
    // Ctrl-C cancels the running command, which then finishes as the Linux tool would (a capture prints its summary);
    // on a loaded machine that can take longer than System.CommandLine's default 2 s before it ends the process itself.
    // Errors are ours to print (CommandErrors), in one style and without a stack trace.
    return await parsed.InvokeAsync(new InvocationConfiguration
    {
        ProcessTerminationTimeout = TimeSpan.FromSeconds(10),
        EnableDefaultExceptionHandler = false,
    });
}
catch (Exception error)
{
    return CommandErrors.Report(parsed.CommandResult.Command, error);
}
