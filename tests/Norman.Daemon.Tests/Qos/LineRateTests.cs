using Norman.Daemon.Dataplane.Ports;

namespace Norman.Daemon.Tests.Qos;

/// <summary>Rates read as tc reads them: "bit" and bare numbers are bits per second, "bps" bytes per second.</summary>
public sealed class LineRateTests
{
    [Theory]
    [InlineData("10G", 10_000_000_000L)]
    [InlineData("100M", 100_000_000L)]
    [InlineData("100mbit", 100_000_000L)]
    [InlineData("2.5Gbit", 2_500_000_000L)]
    [InlineData("100Mbps", 800_000_000L)] // megabytes, as tc: it was taken for megabits
    [InlineData("12kbps", 96_000L)]
    [InlineData("1000bps", 8_000L)]
    [InlineData("1kibit", 1_024L)]
    [InlineData("1mibps", 8L * 1024 * 1024)]
    [InlineData("1000", 1_000L)]
    [InlineData("5bit/s", 5L)]
    [InlineData("0", 0L)]
    public void Rates_read_as_tc_reads_them(string text, long bitsPerSecond) => Assert.Equal(bitsPerSecond, LineRate.Parse(text));

    [Theory]
    [InlineData("fast")]
    [InlineData("-1M")]
    [InlineData("1e30bps")]
    [InlineData("")]
    public void Nonsense_is_refused_with_the_units_named(string text)
    {
        var error = Assert.Throws<FormatException>(() => LineRate.Parse(text));
        Assert.Contains("bytes per second, as tc reads it", error.Message);
    }
}
