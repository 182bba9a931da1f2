using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Tests.Dataplane;

public sealed class NeighbourTableTests
{
    private const long Second = 1000;
    private static readonly MacAddress Mac = MacAddress.Parse("02:00:00:00:00:09");
    private readonly NeighbourTable _table = new(Second);

    [Fact]
    public void An_unknown_address_is_asked_for_once_a_second_and_fails_after_three_silent_probes()
    {
        Assert.Equal(NeighbourTable.Lookup.Pending, _table.Resolve(NetAddress.FromV4(9), 0, out _, out bool probe));
        Assert.True(probe);
        Assert.Equal(NeighbourTable.Lookup.Pending, _table.Resolve(NetAddress.FromV4(9), 500, out _, out probe));
        Assert.False(probe);
        Assert.Equal(NeighbourTable.Lookup.Pending, _table.Resolve(NetAddress.FromV4(9), 1000, out _, out probe));
        Assert.True(probe);
        Assert.Equal(NeighbourTable.Lookup.Pending, _table.Resolve(NetAddress.FromV4(9), 2000, out _, out probe));
        Assert.True(probe);
        Assert.Equal(NeighbourTable.Lookup.Failed, _table.Resolve(NetAddress.FromV4(9), 2500, out _, out probe));
        Assert.False(probe);
        Assert.Equal(NeighbourTable.Lookup.Pending, _table.Resolve(NetAddress.FromV4(9), 3000, out _, out probe));
        Assert.True(probe); // a fresh round, as Linux's FAILED state allows
    }

    [Fact]
    public void An_answer_resolves_and_a_stale_entry_is_reconfirmed_then_expires_if_silent()
    {
        _table.Resolve(NetAddress.FromV4(9), 0, out _, out _);
        _table.Learn(NetAddress.FromV4(9), Mac, 100, reply: true);
        Assert.Equal(NeighbourTable.Lookup.Resolved, _table.Resolve(NetAddress.FromV4(9), 200, out var mac, out bool probe));
        Assert.Equal(Mac, mac);
        Assert.False(probe);

        long stale = 100 + NeighbourTable.ReachableSeconds * Second + 1;
        Assert.Equal(NeighbourTable.Lookup.Resolved, _table.Resolve(NetAddress.FromV4(9), stale, out _, out probe));
        Assert.True(probe);
        Assert.Equal(NeighbourTable.Lookup.Resolved, _table.Resolve(NetAddress.FromV4(9), stale + Second, out _, out probe));
        Assert.True(probe);
        Assert.Equal(NeighbourTable.Lookup.Resolved, _table.Resolve(NetAddress.FromV4(9), stale + 2 * Second, out _, out probe));
        Assert.True(probe);
        Assert.Equal(NeighbourTable.Lookup.Pending, _table.Resolve(NetAddress.FromV4(9), stale + 3 * Second, out _, out probe));
        Assert.True(probe);

        _table.Learn(NetAddress.FromV4(9), Mac, stale + 3 * Second + 10, reply: true);
        Assert.Equal(NeighbourTable.Lookup.Resolved, _table.Resolve(NetAddress.FromV4(9), stale + 3 * Second + 20, out _, out probe));
        Assert.False(probe);
    }

    [Fact]
    public void A_permanent_entry_is_never_probed_nor_overwritten()
    {
        _table.AddPermanent(NetAddress.FromV4(9), Mac);
        Assert.NotEqual(NeighbourTable.Learned.Yes, _table.Learn(NetAddress.FromV4(9), MacAddress.Parse("02:00:00:00:00:66"), 0, reply: true));
        Assert.Equal(NeighbourTable.Lookup.Resolved, _table.Resolve(NetAddress.FromV4(9), 1000 * Second, out var mac, out bool probe));
        Assert.Equal(Mac, mac);
        Assert.False(probe);
    }

    [Fact]
    public void A_resolved_address_keeps_its_mac_against_any_claim_but_a_reply_to_norman_s_own_reconfirmation()
    {
        var forged = MacAddress.Parse("02:00:00:00:00:66");
        _table.Resolve(NetAddress.FromV4(9), 0, out _, out _);
        Assert.Equal(NeighbourTable.Learned.Yes, _table.Learn(NetAddress.FromV4(9), Mac, 100, reply: true));
        Assert.NotEqual(NeighbourTable.Learned.Yes, _table.Learn(NetAddress.FromV4(9), forged, 200, reply: true)); // an unsolicited reply
        Assert.NotEqual(NeighbourTable.Learned.Yes, _table.Learn(NetAddress.FromV4(9), forged, 300, reply: false)); // a request naming us, or a gratuitous ARP
        Assert.Equal(NeighbourTable.Learned.Yes, _table.Learn(NetAddress.FromV4(9), Mac, 400, reply: false)); // the same MAC: a confirmation
        Assert.True(_table.TryGet(NetAddress.FromV4(9), out var mac) && mac == Mac);

        // Stale: Norman asks again, and a reply to that exchange may move the address.
        long stale = 400 + NeighbourTable.ReachableSeconds * Second + 1;
        Assert.Equal(NeighbourTable.Lookup.Resolved, _table.Resolve(NetAddress.FromV4(9), stale, out _, out bool probe));
        Assert.True(probe);
        Assert.NotEqual(NeighbourTable.Learned.Yes, _table.Learn(NetAddress.FromV4(9), forged, stale + 1, reply: false)); // a request is still no answer
        Assert.Equal(NeighbourTable.Learned.Yes, _table.Learn(NetAddress.FromV4(9), forged, stale + 2, reply: true));
        Assert.True(_table.TryGet(NetAddress.FromV4(9), out mac) && mac == forged);
    }

    [Fact]
    public void A_flood_of_askers_fills_the_table_to_its_bound_but_our_own_lookups_still_find_room()
    {
        Assert.Equal(NeighbourTable.Lookup.Pending, _table.Resolve(NetAddress.FromV4(9), 0, out _, out _));
        Assert.Equal(NeighbourTable.Learned.Yes, _table.Learn(NetAddress.FromV4(9), Mac, 1, reply: true)); // the peer we asked for
        for (uint address = 100; address < 100 + NeighbourTable.MaxEntries + 100; address++)
        {
            _table.Learn(NetAddress.FromV4(address), Mac, 2, reply: false);
        }
        Assert.Equal(NeighbourTable.MaxEntries, _table.Count);
        Assert.Equal(NeighbourTable.Learned.TableFull, _table.Learn(NetAddress.FromV4(uint.MaxValue - 1), Mac, 3, reply: false));

        // A neighbour we need takes the place of one that only asked; the one we resolved stays.
        Assert.Equal(NeighbourTable.Lookup.Pending, _table.Resolve(NetAddress.FromV4(uint.MaxValue), 4, out _, out bool probe));
        Assert.True(probe);
        Assert.Equal(NeighbourTable.MaxEntries, _table.Count);
        Assert.True(_table.TryGet(NetAddress.FromV4(9), out var mac) && mac == Mac);
    }

    [Fact]
    public void A_table_full_of_neighbours_we_resolved_ourselves_and_still_reachable_refuses_a_new_lookup()
    {
        for (uint address = 0; address < NeighbourTable.MaxEntries; address++)
        {
            _table.Resolve(NetAddress.FromV4(address), 0, out _, out _);
            _table.Learn(NetAddress.FromV4(address), Mac, 1, reply: true);
        }
        Assert.Equal(NeighbourTable.Lookup.Failed, _table.Resolve(NetAddress.FromV4(uint.MaxValue), 2, out _, out _));
    }
}
