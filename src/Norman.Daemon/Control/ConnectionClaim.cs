using Norman.Core.Protocol;

namespace Norman.Daemon.Control;

/// <summary>
/// A forked child's claim of one of a listener's connections, from the daemon's ask in the listener's header page
/// (<see cref="Sequence"/>) to the listener's stack's answer (connection-handover), whose received bytes may come in
/// parts (each request of an ordinary caller is bounded); the claimer waits on <see cref="Answer"/>.
/// </summary>
public sealed class ConnectionClaim(int sequence)
{
    private HandedOverConnection? _connection;
    private readonly List<byte[]> _parts = new();
    private int _bytes;

    /// <summary>The count of the ask in the header page this claim is answered to.</summary>
    public int Sequence { get; } = sequence;

    /// <summary>The connection as the stack wrote it down, every part together; null when it could not be handed over.</summary>
    public TaskCompletionSource<HandedOverConnection?> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>One part of the answer (the first carries the connection); false, and answered with nothing, past <see cref="HandedOverConnection.MaxClaimedBytes"/>.</summary>
    public bool Add(HandedOverConnection part)
    {
        if (_bytes + part.Received.Length > HandedOverConnection.MaxClaimedBytes)
        {
            Answer.TrySetResult(null);
            return false;
        }
        _connection ??= part;
        _parts.Add(part.Received);
        _bytes += part.Received.Length;
        return true;
    }

    /// <summary>The last part came: the connection with all its received bytes (or nothing, when no part carried it).</summary>
    public void Finish()
    {
        if (_connection is { } connection)
        {
            connection.Received = [.. _parts.SelectMany(part => part)];
        }
        Answer.TrySetResult(_connection);
    }
}
