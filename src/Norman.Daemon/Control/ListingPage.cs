using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Norman.Core.Protocol;

namespace Norman.Daemon.Control;

/// <summary>
/// One page of a listing: as many rows as fit <see cref="ControlProtocol.MaxPageBytes"/> of JSON, from a cursor on,
/// so that no answer passes the protocol's size bound however many rows there are (a listener's applications may
/// report tens of thousands of connections). As a netlink dump, pages are taken from the table as it stands at each
/// request: a row may move between pages when sockets come and go meanwhile.
/// </summary>
public static class ListingPage
{
    public static (List<T> Rows, int? NextCursor) Take<T>(IEnumerable<T> rows, int cursor, JsonTypeInfo<T> json,
        int maxBytes = ControlProtocol.MaxPageBytes)
    {
        if (cursor < 0)
        {
            throw new ControlException(ControlProtocol.Errors.InvalidArgument, $"Cursor {cursor} is not a place in a listing: give the nextCursor of the previous answer, or 0.");
        }
        var page = new List<T>();
        long bytes = 0;
        int index = 0;
        foreach (var row in rows)
        {
            if (index++ < cursor)
            {
                continue;
            }
            int size = JsonSerializer.SerializeToUtf8Bytes(row, json).Length + 1;
            if (page.Count > 0 && bytes + size > maxBytes)
            {
                return (page, cursor + page.Count);
            }
            page.Add(row);
            bytes += size;
        }
        return (page, null);
    }
}
