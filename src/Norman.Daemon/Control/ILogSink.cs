namespace Norman.Daemon.Control;

/// <summary>Where the daemon's events go: stderr for `norman up`, nowhere for tests that do not care.</summary>
public interface ILogSink
{
    void Info(string message);
    void Warn(string message);
    /// <summary>A packet a `log` rule matched (always written, as the kernel's LOG target writes to the kernel log).</summary>
    void Packet(string message);
}

/// <summary>Writes "normand: level: message" lines to stderr, as a journal picks them up from a systemd unit.</summary>
public sealed class StderrLog(bool verbose) : ILogSink
{
    /// <summary>
    /// Standard error, opened now: .NET opens it on first use, and a daemon whose first warning is "out of
    /// descriptors" could not open it then (the warning itself threw, and took the accept loop with it).
    /// </summary>
    private readonly TextWriter _error = Console.Error;

    public void Info(string message)
    {
        if (verbose)
        {
            _error.WriteLine($"normand: info: {message}");
        }
    }

    public void Warn(string message) => _error.WriteLine($"normand: warning: {message}");

    public void Packet(string message) => _error.WriteLine($"normand: filter: {message}");
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

    public void Packet(string message)
    {
    }
}
