using System.Globalization;
using Spectre.Console;

namespace Norman.Cli.Commands;

/// <summary>What the commands that print Spectre tables share: a console on standard output, and numbers as they print them.</summary>
internal static class TableConsole
{
    /// <summary>A console on standard output; into a pipe or a file it is 200 columns wide, so that tables do not wrap at 80.</summary>
    public static IAnsiConsole Create()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        if (Console.IsOutputRedirected)
        {
            console.Profile.Width = 200;
        }
        return console;
    }

    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
