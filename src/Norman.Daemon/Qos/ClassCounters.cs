namespace Norman.Daemon.Qos;

/// <summary>
/// A class's counters; they outlive policy swaps, kept by the class's name. Written by the dataplane thread only,
/// read racily by the control plane (each field is one aligned 64-bit word, so a read is never torn).
/// </summary>
public sealed class ClassCounters
{
    /// <summary>Packets and frame bytes the class sent.</summary>
    public long Packets;
    public long Bytes;
    /// <summary>Packets received above the class's policing rate, dropped.</summary>
    public long PolicedDrops;
    /// <summary>Packets waiting in the class's TX pipes at the last breath that looked (tc's backlog).</summary>
    public long Backlog;
    /// <summary>Times the class had packets waiting but its ceiling held them back (tc's overlimits).</summary>
    public long Overlimits;
}
