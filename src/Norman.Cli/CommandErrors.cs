using System.CommandLine;
using Norman.Client;
using Norman.Core.Protocol;

namespace Norman.Cli;

/// <summary>
/// One error style for every command, as the Linux tools print theirs: `norman CMD: what is wrong; what to do`, on
/// standard error, with the exit status the README documents (1 a failure, 2 bad usage, 77 permission denied), and
/// never a stack trace or a .NET type name. Commands catch what they expect; anything else ends here.
/// </summary>
public static class CommandErrors
{
    public const int Failure = 1, Usage = 2, NotPermitted = 77, Software = 70;

    public static int Report(Command command, Exception error)
    {
        string name = command is RootCommand ? "norman" : $"norman {command.Name}";
        var (message, status) = Describe(error);
        Console.Error.WriteLine($"{name}: {message}");
        if (Environment.GetEnvironmentVariable("NORMAN_DEBUG") is { Length: > 0 })
        {
            Console.Error.WriteLine(error); // for whoever reports a bug: the whole trace, asked for
        }
        return status;
    }

    /// <summary>Usage errors (an unknown option, a bad value): each on its line, then where the help is; status 2.</summary>
    public static int ReportUsage(Command command, IEnumerable<string> errors)
    {
        string name = command is RootCommand ? "norman" : $"norman {command.Name}";
        foreach (string error in errors)
        {
            Console.Error.WriteLine($"{name}: {error}");
        }
        Console.Error.WriteLine($"{name}: see `{FullName(command)} --help`.");
        return Usage;
    }

    private static string FullName(Command command) =>
        command.Parents.OfType<Command>().FirstOrDefault() is { } parent and not RootCommand ? $"{FullName(parent)} {command.Name}"
        : command is RootCommand ? "norman" : $"norman {command.Name}";

    public static (string Message, int Status) Describe(Exception error) => error switch
    {
        NormanException refused => (refused.Message, refused.Code == ControlProtocol.Errors.NotPermitted ? NotPermitted : Failure),
        UnauthorizedAccessException denied => (Sentence(denied.Message) + " Run as a user who may, or choose another path.", NotPermitted),
        DirectoryNotFoundException missing => (Sentence(missing.Message) + " Create the directory first, or choose another path.", Failure),
        FileNotFoundException missing => ($"{missing.FileName ?? "the file"} does not exist; check the path.", Failure),
        IOException io => (Sentence(io.Message), Failure),
        FormatException or ArgumentException => (Sentence(error.Message), Usage),
        OperationCanceledException => ("interrupted.", 130),
        _ => ($"an internal error: {Sentence(error.Message)} This is a bug; please report it with the command you ran.", Software),
    };

    private static string Sentence(string text) => text.EndsWith('.') ? text : text + ".";
}
