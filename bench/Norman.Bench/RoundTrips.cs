using System.Globalization;

namespace Norman.Bench;

/// <summary>Round-trip times of one run, in microseconds, and the percentiles the benchmark reports.</summary>
public sealed class RoundTrips(double[] microseconds)
{
    private readonly double[] _sorted = microseconds.Order().ToArray();

    public int Count => _sorted.Length;

    public double Percentile(double p) => _sorted.Length == 0 ? double.NaN : _sorted[Math.Min(_sorted.Length - 1, (int)(p / 100 * _sorted.Length))];

    /// <summary>"p50 p99 p99.9", the line a child process prints for its parent.</summary>
    public string ToLine() => string.Join(' ', new[] { 50, 99, 99.9 }.Select(p => Percentile(p).ToString("F2", CultureInfo.InvariantCulture)));

    public static (double P50, double P99, double P999) Parse(string line)
    {
        var parts = line.Split(' ').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return (parts[0], parts[1], parts[2]);
    }
}
