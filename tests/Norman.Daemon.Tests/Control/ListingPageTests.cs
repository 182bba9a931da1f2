using Norman.Core.Protocol;
using Norman.Daemon.Control;

namespace Norman.Daemon.Tests.Control;

public sealed class ListingPageTests
{
    private static IEnumerable<SocketInfo> Rows(int count) =>
        Enumerable.Range(0, count).Select(i => new SocketInfo { Id = i, ProcessName = new string('x', 100) });

    [Fact]
    public void A_listing_larger_than_a_page_comes_in_pages_that_hold_every_row_once_and_each_fit_the_bound()
    {
        const int maxBytes = 64 << 10;
        var seen = new List<long>();
        int cursor = 0;
        int pages = 0;
        while (true)
        {
            var (rows, next) = ListingPage.Take(Rows(5000), cursor, ControlJson.Default.SocketInfo, maxBytes);
            pages++;
            Assert.True(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(rows, ControlJson.Default.ListSocketInfo).Length <= maxBytes + rows.Count);
            seen.AddRange(rows.Select(r => r.Id));
            if (next is not { } more)
            {
                break;
            }
            Assert.Equal(cursor + rows.Count, more);
            cursor = more;
        }
        Assert.True(pages > 1);
        Assert.Equal(Enumerable.Range(0, 5000).Select(i => (long)i), seen);
    }

    [Fact]
    public void A_negative_cursor_is_refused()
    {
        var refusal = Assert.Throws<ControlException>(() => ListingPage.Take(Rows(1), -1, ControlJson.Default.SocketInfo));
        Assert.Equal(ControlProtocol.Errors.InvalidArgument, refusal.Code);
    }
}
