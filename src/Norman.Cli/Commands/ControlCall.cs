using System.CommandLine;
using Norman.Client;
using Norman.Core.Protocol;

namespace Norman.Cli.Commands;

/// <summary>
/// One request to the daemon from an admin command: connect, call, show the answer; a refusal is printed after the
/// command's name, and the exit code says which kind (77, as sysexits' EX_NOPERM, when permission was denied).
/// </summary>
public static class ControlCall
{
    public static int Run(string command, ParseResult result, Option<string?> socket, ControlRequest request, Action<ControlResponse> show)
    {
        try
        {
            using var control = ControlChannel.Connect(result.GetValue(socket));
            var response = control.Call(request);
            show(response);
            foreach (string note in response.Notes ?? [])
            {
                Console.Error.WriteLine($"{command}: note: {note}");
            }
            return 0;
        }
        catch (NormanException error)
        {
            Console.Error.WriteLine($"{command}: {error.Message}");
            return error.Code == ControlProtocol.Errors.NotPermitted ? 77 : 1;
        }
        catch (IOException error)
        {
            Console.Error.WriteLine($"{command}: {error.Message}");
            return 1;
        }
    }
}
