using System.Diagnostics;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>Runs iproute2's `ip` for the few link changes a port makes (move to a namespace, bring up), with its error on failure.</summary>
public static class IpCommand
{
    public static void Run(params string[] arguments)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            throw new InvalidOperationException($"Cannot run `ip` ({error.Message}): install iproute2.", error);
        }
        using (process)
        {
            string errors = process.StandardError.ReadToEnd();
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"`ip {string.Join(' ', arguments)}` failed: {errors.Trim()}");
            }
        }
    }
}
