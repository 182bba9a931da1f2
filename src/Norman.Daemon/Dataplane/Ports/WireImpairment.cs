namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// A bad cable, on purpose: each frame sent is lost, sent twice, or held back behind the next one, with the given
/// probabilities — what netem would do on a kernel that has it, for testing the transports that ride on Norman.
/// Deterministic for a seed.
/// </summary>
public sealed class WireImpairment(double loss, double duplicate, double reorder, int seed = 1)
{
    public enum Fate
    {
        Send,
        Lose,
        Duplicate,
        HoldBack,
    }

    private readonly Random _random = new(seed);

    public double Loss { get; } = Check(loss, nameof(loss));
    public double DuplicateShare { get; } = Check(duplicate, nameof(duplicate));
    public double Reorder { get; } = Check(reorder, nameof(reorder));
    /// <summary>Frames lost, sent twice and held back so far (the port's thread writes them).</summary>
    public long Lost { get; private set; }
    public long Duplicated { get; private set; }
    public long HeldBack { get; private set; }

    public Fate Next()
    {
        double roll = _random.NextDouble();
        var fate = roll < Loss ? Fate.Lose
            : roll < Loss + DuplicateShare ? Fate.Duplicate
            : roll < Loss + DuplicateShare + Reorder ? Fate.HoldBack
            : Fate.Send;
        Lost += fate == Fate.Lose ? 1 : 0;
        Duplicated += fate == Fate.Duplicate ? 1 : 0;
        HeldBack += fate == Fate.HoldBack ? 1 : 0;
        return fate;
    }

    private static double Check(double probability, string name) => probability is >= 0 and <= 0.5
        ? probability
        : throw new ArgumentOutOfRangeException(name, "use 0% to 50%");
}
