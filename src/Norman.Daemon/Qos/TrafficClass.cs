using System.Globalization;
using System.Text;

namespace Norman.Daemon.Qos;

/// <summary>
/// One QoS class as the administrator wrote it: a strict-priority band (0 is served first), a weight for sharing
/// inside its band, a guaranteed rate and a ceiling (HTB's rate and ceil), a burst, a DSCP mark for what it sends
/// and an ingress policing rate for what it receives. Rates are bits per second on the wire (preamble, FCS and
/// gap included, as the line rate counts them); 0 means none (no guarantee, no ceiling but the line, no policing).
/// </summary>
public sealed record TrafficClass
{
    public const string DefaultName = "default";
    public const int Bands = 8;
    public const int DefaultBand = 1;
    public const int MaxWeight = 1000;

    public string Name { get; init; } = DefaultName;
    public int Band { get; init; } = DefaultBand;
    public int Weight { get; init; } = 1;
    public long RateBits { get; init; }
    public long CeilBits { get; init; }
    /// <summary>Bytes the class may send at once beyond its rate and ceiling; 0 picks a millisecond of each.</summary>
    public long BurstBytes { get; init; }
    /// <summary>The DSCP written into every IPv4 packet the class sends; -1 leaves the application's.</summary>
    public int Dscp { get; init; } = -1;
    /// <summary>Packets received above this rate are dropped and counted; 0 for no policing.</summary>
    public long PoliceBits { get; init; }

    /// <summary>The class in the words `norman qos add` reads, so that show, save and restore agree.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{Name} band {Band} weight {Weight}");
        if (RateBits > 0)
        {
            text.Append(" rate ").Append(FormatRate(RateBits));
        }
        if (CeilBits > 0)
        {
            text.Append(" ceil ").Append(FormatRate(CeilBits));
        }
        if (BurstBytes > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $" burst {BurstBytes}");
        }
        if (Dscp >= 0)
        {
            text.Append(CultureInfo.InvariantCulture, $" dscp {Dscp}");
        }
        if (PoliceBits > 0)
        {
            text.Append(" police ").Append(FormatRate(PoliceBits));
        }
        return text.ToString();
    }

    /// <summary>"100M", "1G", "2500k": the shortest exact form, as the parser reads it back.</summary>
    public static string FormatRate(long bits)
    {
        foreach (var (unit, size) in new[] { ("G", 1_000_000_000L), ("M", 1_000_000L), ("k", 1_000L) })
        {
            if (bits % size == 0)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{bits / size}{unit}");
            }
        }
        return bits.ToString(CultureInfo.InvariantCulture);
    }
}
