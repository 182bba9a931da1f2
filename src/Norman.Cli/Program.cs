using System.CommandLine;
using Norman.Cli.Commands;

var root = new RootCommand("Norman: kernel-bypass networking that the administrator still controls.")
{
    UpCommand.Create(),
    SsCommand.Create(),
    FilterCommand.Create(),
    TraceCommand.Create(),
    DemoCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
