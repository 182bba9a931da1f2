namespace Norman.Daemon.Qos;

/// <summary>A socket's class (an index into a snapshot's classes) and the QoS generation it was chosen in.</summary>
public readonly record struct QosChoice(int Class, long Generation)
{
    /// <summary>Not chosen yet: no snapshot has generation -1.</summary>
    public static readonly QosChoice None = new(0, -1);
}
