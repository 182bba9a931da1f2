namespace Norman.Client;

/// <summary>
/// A Norman operation failed. <see cref="Code"/> is errno-like (EADDRINUSE, EACCES, ENOENT…) for programs;
/// the message says what happened and what to do.
/// </summary>
public class NormanException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;
}

/// <summary>The daemon is not there: not started, or it went away (restart, crash).</summary>
public sealed class NormanDaemonUnavailableException(string message, Exception? inner = null)
    : NormanException("ECONNREFUSED", message, inner);
