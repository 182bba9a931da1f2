using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Qos;

/// <summary>
/// A class as the dataplane runs it: its settings in wire bytes and timestamp ticks, its two token buckets (HTB's
/// rate and ceil), its deficit for round robin inside its band and whose turn inside it is next (state a class keeps
/// across breaths, as an HTB class does), and its policing bucket. Owned by the dataplane thread once published;
/// the scheduler's per-breath lists are the scheduler's (QosScheduler).
/// </summary>
public sealed class ClassState
{
    /// <summary>Deficit round robin's quantum for weight 1: one full frame as it occupies the wire.</summary>
    public const int QuantumPerWeight = 1514 + LineRate.PerFrameOverhead;

    private readonly LineRate _rate, _ceil;
    private readonly Policy.TokenBucket? _police;

    public ClassState(TrafficClass settings, int index, ClassCounters counters)
    {
        Settings = settings;
        Index = index;
        Counters = counters;
        Band = settings.Band;
        Quantum = settings.Weight * QuantumPerWeight;
        Tos = settings.Dscp < 0 ? -1 : settings.Dscp << 2;
        HasRate = settings.RateBits > 0;
        _rate = new LineRate(settings.RateBits, Burst(settings.RateBits, settings.BurstBytes));
        _ceil = new LineRate(settings.CeilBits, Burst(settings.CeilBits, settings.BurstBytes));
        if (settings.PoliceBits > 0)
        {
            _police = new Policy.TokenBucket(settings.PoliceBits / 8, Burst(settings.PoliceBits, settings.BurstBytes));
        }
    }

    public TrafficClass Settings { get; }
    public int Index { get; }
    public int Band { get; }
    public int Quantum { get; }
    /// <summary>The TOS byte's DSCP bits to write (ECN bits kept), or -1.</summary>
    public int Tos { get; }
    public bool HasRate { get; }
    public bool Polices => _police is not null;
    public ClassCounters Counters { get; }

    public long Deficit;
    /// <summary>True while the class is inside its round-robin turn (its quantum granted, not yet spent).</summary>
    public bool TurnOpen;

    /// <summary>Whose turn inside the class is next: the socket after the one served last (by walk order).</summary>
    public int LastServedOrder = -1;

    /// <summary>A millisecond of the rate (and at least two full frames) unless the class sets its own burst.</summary>
    private static long Burst(long bits, long burstBytes) =>
        burstBytes > 0 ? burstBytes : (long)Math.Max(bits / 8.0 / 1000, 2 * QuantumPerWeight);

    /// <summary>Adds the tokens earned since the last refill, up to each bucket's burst (once a breath).</summary>
    public void Refill(long now)
    {
        _rate.Budget(now);
        _ceil.Budget(now);
    }

    /// <summary>May send on its guarantee: it has one and has not spent it.</summary>
    public bool UnderRate => HasRate && _rate.HasTokens;

    /// <summary>May send at all: no ceiling but the line, or tokens left under it.</summary>
    public bool UnderCeil => _ceil.HasTokens;

    /// <summary>
    /// Every packet costs the ceiling; only what was sent on the guarantee costs the rate, so that borrowing the
    /// line's leftovers never eats into the class's guarantee.
    /// </summary>
    public void Charge(long wireBytes, bool onGuarantee)
    {
        if (onGuarantee)
        {
            _rate.ChargeWireBytes(wireBytes);
        }
        _ceil.ChargeWireBytes(wireBytes);
    }

    /// <summary>Ingress policing: true when a received frame of this size is within the class's policing rate.</summary>
    public bool PoliceAdmits(long wireBytes, long now) => _police!.Take(wireBytes, now);
}
