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

    /// <summary>
    /// Descriptors that become readable when the port has frames for the dataplane, for its epoll while it sleeps.
    /// None: the port cannot wake the dataplane, which then sleeps only briefly (<see cref="SleepAllowance.Briefly"/>).
    /// </summary>
    IReadOnlyList<int> WakeDescriptors => [];

    /// <summary>
    /// Called when the dataplane is about to sleep: the port arms what will wake it and says how long it may sleep.
    /// Anything that arrives after this call must make a <see cref="WakeDescriptors"/> readable.
    /// </summary>
    SleepAllowance PrepareToSleep(long now) => SleepAllowance.Briefly;
}

/// <summary>How long the dataplane may sleep, as one of its sources of work sees it; the shortest answer wins.</summary>
public enum SleepAllowance
{
    /// <summary>Work is waiting, or will be within microseconds: do not sleep.</summary>
    NotNow,
    /// <summary>Work will come at a time nothing signals (a shaper's tokens, a frame in flight on a slow wire): sleep a little.</summary>
    Briefly,
    /// <summary>Whatever comes will wake the dataplane: sleep until it does.</summary>
    UntilWoken,
}
