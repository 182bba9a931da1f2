using System.Globalization;
using System.Text;

namespace Norman.Cli.Commands;

/// <summary>
/// The demo's picture of the QoS story, as an SVG file any browser opens: both applications' throughput over time
/// with the phases marked, and the database's round trip (p50 and p99, log scale) in each phase.
/// </summary>
public sealed class QosChart
{
    private readonly List<(double Seconds, double DatabaseMbps, double BobMbps)> _points = new();
    private readonly List<(double StartSeconds, string Name, double P50, double P99)> _phases = new();

    public void AddPoint(double seconds, double databaseMbps, double bobMbps) => _points.Add((seconds, databaseMbps, bobMbps));

    public void AddPhase(double startSeconds, string name, double p50Microseconds, double p99Microseconds) =>
        _phases.Add((startSeconds, name, p50Microseconds, p99Microseconds));

    public void Write(string path, double lineMbps)
    {
        const int Width = 860, Left = 70, Right = 20, PlotWidth = Width - Left - Right;
        const int TopY = 50, TopHeight = 240, BottomY = 360, BottomHeight = 170, Height = 580;
        double end = _points.Count == 0 ? 1 : _points[^1].Seconds;
        double X(double seconds) => Left + seconds / end * PlotWidth;
        double Y(double mbps) => TopY + TopHeight - Math.Min(mbps, lineMbps * 1.05) / (lineMbps * 1.05) * TopHeight;
        var svg = new StringBuilder();
        void Line(string text) => svg.AppendLine(text);
        string F(double value) => value.ToString("0.#", CultureInfo.InvariantCulture);

        Line($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" font-family=\"sans-serif\" font-size=\"12\">");
        Line($"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>");
        Line($"<text x=\"{Left}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">Norman QoS: the database before Bob's bulk sender</text>");
        // Throughput panel: axes, grid, phases, the two series.
        for (double mbps = 0; mbps <= lineMbps; mbps += lineMbps / 4)
        {
            Line($"<line x1=\"{Left}\" x2=\"{Left + PlotWidth}\" y1=\"{F(Y(mbps))}\" y2=\"{F(Y(mbps))}\" stroke=\"#ddd\"/>");
            Line($"<text x=\"{Left - 6}\" y=\"{F(Y(mbps) + 4)}\" text-anchor=\"end\">{F(mbps)}</text>");
        }
        Line($"<text x=\"16\" y=\"{TopY + TopHeight / 2}\" transform=\"rotate(-90 16 {TopY + TopHeight / 2})\" text-anchor=\"middle\">Mbit/s sent</text>");
        foreach (var phase in _phases)
        {
            Line($"<line x1=\"{F(X(phase.StartSeconds))}\" x2=\"{F(X(phase.StartSeconds))}\" y1=\"{TopY}\" y2=\"{TopY + TopHeight}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>");
            Line($"<text x=\"{F(X(phase.StartSeconds) + 4)}\" y=\"{TopY + 14}\" fill=\"#444\">{Escape(phase.Name)}</text>");
        }
        Line($"<text x=\"{Left + PlotWidth / 2}\" y=\"{TopY + TopHeight + 30}\" text-anchor=\"middle\">seconds</text>");
        for (int second = 0; second <= (int)end; second++)
        {
            Line($"<text x=\"{F(X(second))}\" y=\"{TopY + TopHeight + 15}\" text-anchor=\"middle\">{second}</text>");
        }
        Series(svg, _points.Select(p => (X(p.Seconds), Y(p.DatabaseMbps))), "#1f77b4");
        Series(svg, _points.Select(p => (X(p.Seconds), Y(p.BobMbps))), "#ff7f0e");
        Legend(svg, Left + PlotWidth - 250, TopY - 14, "#1f77b4", "database (kvdb)");
        Legend(svg, Left + PlotWidth - 120, TopY - 14, "#ff7f0e", "Bob's app");

        // Latency panel: p50 and p99 bars per phase on a log scale from 1 µs to 1 s.
        Line($"<text x=\"{Left}\" y=\"{BottomY - 14}\" font-weight=\"bold\">database round trip, as the client on the peer host sees it</text>");
        double LogY(double microseconds) => BottomY + BottomHeight - Math.Clamp(Math.Log10(Math.Max(microseconds, 1)), 0, 6) / 6 * BottomHeight;
        foreach (var (tick, label) in new[] { (1.0, "1 µs"), (10.0, "10 µs"), (100.0, "100 µs"), (1e3, "1 ms"), (1e4, "10 ms"), (1e5, "100 ms"), (1e6, "1 s") })
        {
            Line($"<line x1=\"{Left}\" x2=\"{Left + PlotWidth}\" y1=\"{F(LogY(tick))}\" y2=\"{F(LogY(tick))}\" stroke=\"#ddd\"/>");
            Line($"<text x=\"{Left - 6}\" y=\"{F(LogY(tick) + 4)}\" text-anchor=\"end\">{label}</text>");
        }
        double slot = (double)PlotWidth / Math.Max(1, _phases.Count);
        for (int i = 0; i < _phases.Count; i++)
        {
            var phase = _phases[i];
            double x = Left + i * slot + slot / 2;
            // Labels beside their bars, outwards, so that two bars of the same height never overlap their labels.
            foreach (var (value, offset, color, name, anchor, labelX) in new[]
                { (phase.P50, -34.0, "#2ca02c", "p50", "end", -38.0), (phase.P99, 4.0, "#d62728", "p99", "start", 38.0) })
            {
                double top = LogY(value);
                Line($"<rect x=\"{F(x + offset)}\" y=\"{F(top)}\" width=\"30\" height=\"{F(BottomY + BottomHeight - top)}\" fill=\"{color}\"/>");
                Line($"<text x=\"{F(x + labelX)}\" y=\"{F(top + 10)}\" text-anchor=\"{anchor}\">{name} {Duration(value)}</text>");
            }
            Line($"<text x=\"{F(x)}\" y=\"{BottomY + BottomHeight + 16}\" text-anchor=\"middle\">{Escape(phase.Name)}</text>");
        }
        Line("</svg>");
        File.WriteAllText(path, svg.ToString());
    }

    public static string Duration(double microseconds) => microseconds >= 1000
        ? string.Create(CultureInfo.InvariantCulture, $"{microseconds / 1000:0.#} ms")
        : string.Create(CultureInfo.InvariantCulture, $"{microseconds:0} µs");

    private static void Series(StringBuilder svg, IEnumerable<(double X, double Y)> points, string color) =>
        svg.AppendLine($"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"" +
            string.Join(' ', points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.X:0.#},{p.Y:0.#}"))) + "\"/>");

    private static void Legend(StringBuilder svg, int x, int y, string color, string name)
    {
        svg.AppendLine($"<rect x=\"{x}\" y=\"{y - 9}\" width=\"14\" height=\"4\" fill=\"{color}\"/>");
        svg.AppendLine($"<text x=\"{x + 18}\" y=\"{y - 4}\">{Escape(name)}</text>");
    }

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace("'", "&apos;");
}
