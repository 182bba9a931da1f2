namespace Norman.Bench;

/// <summary>Several runs of one figure, reported as median with min and max.</summary>
public sealed class Measurement(string key, string description, string unit)
{
    private readonly List<double> _runs = new();

    public string Key { get; } = key;
    public string Description { get; } = description;
    public string Unit { get; } = unit;
    public IReadOnlyList<double> Runs => _runs;

    public void Add(double value) => _runs.Add(value);

    public double Median
    {
        get
        {
            var sorted = _runs.Order().ToArray();
            return sorted.Length == 0 ? double.NaN
                : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2]
                : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
    }

    public double Min => _runs.Count == 0 ? double.NaN : _runs.Min();
    public double Max => _runs.Count == 0 ? double.NaN : _runs.Max();
}
