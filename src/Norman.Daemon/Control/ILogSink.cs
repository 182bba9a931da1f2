namespace Norman.Daemon.Control;

/// <summary>Where the daemon's events go: stderr for `norman up`, nowhere for tests that do not care.</summary>
public interface ILogSink
{
    void Info(string message);
    void Warn(string message);
}

/// <summary>Writes "normand: level: message" lines to stderr, as a journal picks them up from a systemd unit.</summary>
public sealed class StderrLog(bool verbose) : ILogSink
{
    public void Info(string message)
    {
        if (verbose)
        {
            Console.Error.WriteLine($"normand: info: {message}");
        }
    }

    public void Warn(string message) => Console.Error.WriteLine($"normand: warning: {message}");
}

public sealed class NullLog : ILogSink
{
    public static readonly NullLog Instance = new();

    public void Info(string message)
    {
    }

    public void Warn(string message)
    {
    }
}
