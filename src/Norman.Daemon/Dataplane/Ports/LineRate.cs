using System.Diagnostics;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// A token bucket at a wire's line rate, in bytes as they occupy the wire: each frame also costs its FCS (4),
/// preamble and inter-frame gap (20), and is padded to Ethernet's minimum, so a 10 Gbit/s virtual wire carries
/// 14.88 Mpps of minimum frames, as a real one does. Zero bits per second means no limit. QoS classes keep their
/// rate and ceiling in two of these.
/// </summary>
public sealed class LineRate
{
    public const int PerFrameOverhead = 24;
    public const int MinimumFrame = 60;

    private readonly double _bytesPerTick;
    private readonly double _burstBytes;
    private double _tokens;
    private long _lastRefill;

    /// <param name="bitsPerSecond">The rate; 0 for no limit.</param>
    /// <param name="burstBytes">Bytes that may go at once; 0 for a millisecond of the rate and at least a full batch of
    /// maximum frames, so batching never starves.</param>
    public LineRate(long bitsPerSecond, long burstBytes = 0)
    {
        BitsPerSecond = bitsPerSecond;
        _bytesPerTick = bitsPerSecond / 8.0 / Stopwatch.Frequency;
        _burstBytes = burstBytes > 0 ? burstBytes : Math.Max(bitsPerSecond / 8.0 / 1000, PacketBatch.Capacity * (1514 + PerFrameOverhead));
        _tokens = _burstBytes;
        _lastRefill = Stopwatch.GetTimestamp();
    }

    public long BitsPerSecond { get; }
    public bool IsUnlimited => BitsPerSecond <= 0;

    /// <summary>Something may be sent: no limit, or tokens left as of the last <see cref="Budget"/>.</summary>
    public bool HasTokens => IsUnlimited || _tokens > 0;

    public static int WireBytes(int frameLength) => Math.Max(frameLength, MinimumFrame) + PerFrameOverhead;

    public long Budget(long now)
    {
        if (IsUnlimited)
        {
            return long.MaxValue;
        }
        _tokens = Math.Min(_burstBytes, _tokens + (now - _lastRefill) * _bytesPerTick);
        _lastRefill = now;
        return _tokens <= 0 ? 0 : (long)_tokens;
    }

    /// <summary>Charges a frame; tokens may go negative (host replies are never held back), and are repaid over time.</summary>
    public void Charge(int frameLength)
    {
        if (!IsUnlimited)
        {
            _tokens -= WireBytes(frameLength);
        }
    }

    /// <summary>Charges bytes already counted as they occupy the wire (see <see cref="WireBytes"/>).</summary>
    public void ChargeWireBytes(long wireBytes)
    {
        if (!IsUnlimited)
        {
            _tokens -= wireBytes;
        }
    }

    /// <summary>Parses "10G", "100M", "2.5Gbit", "12mbps" (bytes, as tc), "0" (unlimited) into bits per second.</summary>
    public static long Parse(string text)
    {
        // tc's units (tc(8), RATES): "bit" or a bare number are bits per second, "bps" BYTES per second, each with an SI
        // (k, m, g, t) or IEC (ki, mi, gi, ti) prefix; and ours, a bare prefix (10G) and "bit/s", are bits.
        string value = text.Trim().ToLowerInvariant();
        double unit = 1;
        if (value.EndsWith("bit/s", StringComparison.Ordinal) || value.EndsWith("bit", StringComparison.Ordinal))
        {
            value = value[..value.LastIndexOf("bit", StringComparison.Ordinal)];
        }
        else if (value.EndsWith("bps", StringComparison.Ordinal))
        {
            value = value[..^3];
            unit = 8;
        }
        double prefix = 1;
        if (value.EndsWith('i') && value.Length > 1 && "kmgt".Contains(value[^2], StringComparison.Ordinal))
        {
            prefix = value[^2] switch { 'k' => 1024.0, 'm' => 1024.0 * 1024, 'g' => 1024.0 * 1024 * 1024, _ => 1024.0 * 1024 * 1024 * 1024 };
            value = value[..^2];
        }
        else if (value.Length > 0 && "kmgt".Contains(value[^1], StringComparison.Ordinal))
        {
            prefix = value[^1] switch { 'k' => 1e3, 'm' => 1e6, 'g' => 1e9, _ => 1e12 };
            value = value[..^1];
        }
        if (!double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double number)
            || number < 0 || double.IsInfinity(number) || number * prefix * unit > long.MaxValue)
        {
            throw new FormatException($"'{text}' is not a rate: write it like 10G, 100M or 100mbit (bits per second), 12mbps (bytes per second, as tc reads it), or 0 for no limit.");
        }
        return (long)(number * prefix * unit);
    }
}
