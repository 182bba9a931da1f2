using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Tests.Dataplane;

public sealed class DropReasonTests
{
    [Fact]
    public void Every_parse_error_is_the_drop_reason_of_the_same_name_and_value()
    {
        // The parse stage counts a parse error as (DropReason)(int)error: the two enums must stay aligned.
        foreach (var error in Enum.GetValues<ParseError>())
        {
            Assert.Equal(error.ToString(), ((DropReason)(int)error).ToString());
        }
    }

    [Fact]
    public void The_count_covers_every_reason_numbered_without_gaps()
    {
        var values = Enum.GetValues<DropReason>().Select(v => (int)v).ToArray();
        Assert.Equal(Enumerable.Range(0, values.Length), values);
        Assert.Equal(values.Length, DropReasons.Count);
    }

    [Fact]
    public void Drop_reason_names_are_snake_case_and_distinct()
    {
        var names = Enum.GetValues<DropReason>().Select(DropReasons.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Equal("tx_spoofed_source", DropReasons.Name(DropReason.TxSpoofedSource));
        Assert.All(names, name => Assert.Matches("^[a-z0-9_]+$", name));
    }
}
