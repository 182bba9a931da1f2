namespace Norman.Daemon.Control;

/// <summary>A refused control operation; becomes a <see cref="Norman.Core.Protocol.ControlError"/> on the wire.</summary>
public sealed class ControlException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
