using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Qos;

/// <summary>
/// A class as the dataplane runs it: its settings in wire bytes and timestamp ticks, its two token buckets (HTB's
/// rate and ceil), its deficit for round robin inside its band, its policing bucket, and this breath's list of
/// sockets with something to send. Owned by the dataplane thread once published.
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

    // This breath's sockets with packets waiting: an intrusive list through PipeSocket.NextInClass; empty when the
    // class has nothing to send (it is then on no band's list either).
    public PipeSocket? FirstSocket;
    public PipeSocket? LastSocket;
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

    /// <summary>
    /// Once a breath, when its list is complete: moves the sockets up to the one served last to the back of the
    /// list, so that its sockets take turns across breaths, not only within one.
    /// </summary>
    public void RotateToNextTurn()
    {
        var head = FirstSocket;
        if (head is null || LastSocket!.QosOrder <= LastServedOrder)
        {
            return; // nobody after the last served: start from the beginning
        }
        while (FirstSocket!.QosOrder <= LastServedOrder)
        {
            var moved = FirstSocket;
            FirstSocket = moved.NextInClass;
            moved.NextInClass = null;
            LastSocket!.NextInClass = moved;
            LastSocket = moved;
        }
    }

    public void Enqueue(PipeSocket socket)
    {
        socket.NextInClass = null;
        if (LastSocket is null)
        {
            FirstSocket = socket;
        }
        else
        {
            LastSocket.NextInClass = socket;
        }
        LastSocket = socket;
    }
}
