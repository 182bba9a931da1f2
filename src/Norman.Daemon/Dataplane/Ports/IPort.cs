namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// The wire side of the dataplane. Called once per batch, never per packet, so an interface costs nothing here.
/// Implementations are used by the dataplane thread only.
/// </summary>
public interface IPort : IDisposable
{
    /// <summary>How the port is shown to people: "virtual", "wire:NAME", "tap:NAME".</summary>
    string Name { get; }

    /// <summary>Appends received frames to the batch until it is full or nothing is waiting; returns how many.</summary>
    int Receive(PacketBatch batch, long now);

    /// <summary>Bytes of frames the line rate lets the port take now (long.MaxValue when unlimited).</summary>
    long TransmitBudget(long now);

    /// <summary>Sends every frame of the batch that no stage marked done; returns how many it had to drop (wire full).</summary>
    int Transmit(PacketBatch batch, long now);
}
