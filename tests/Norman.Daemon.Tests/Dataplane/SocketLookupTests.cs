using Norman.Core.Packets;
using Norman.Daemon.Dataplane;

namespace Norman.Daemon.Tests.Dataplane;

public sealed class SocketLookupTests
{
    private static readonly NetAddress Ours = NetAddress.Parse("198.18.0.1");
    private static readonly NetAddress Peer = NetAddress.Parse("198.18.0.2");

    private static int Find(SocketLookup lookup, ushort sourcePort, ushort destinationPort = 5000) =>
        lookup.TryFind(IpProtocols.Udp, Ours, destinationPort, Peer, sourcePort, out int slot) ? slot : -1;

    [Fact]
    public void A_connected_socket_comes_first_then_one_bound_to_the_address_then_the_wildcard_as_sockets_come_and_go()
    {
        var lookup = new SocketLookup(16);
        var wildcard = FlowKey.Listener(IpProtocols.Udp, NetAddress.FromV4(0), 5000);
        var bound = FlowKey.Listener(IpProtocols.Udp, Ours, 5000);
        var connected = new FlowKey(IpProtocols.Udp, Ours, 5000, Peer, 7);
        lookup.Add(wildcard, 1);
        Assert.Equal(1, Find(lookup, 7));
        lookup.Add(bound, 2);
        lookup.Add(connected, 3);
        lookup.Add(connected, 3); // the same key again replaces: it must not count twice
        Assert.Equal(3, Find(lookup, 7));
        Assert.Equal(2, Find(lookup, 8));
        Assert.Equal(-1, Find(lookup, 7, destinationPort: 5001));

        lookup.Remove(bound);
        Assert.Equal(1, Find(lookup, 8));
        Assert.Equal(3, Find(lookup, 7));
        lookup.Remove(connected);
        Assert.Equal(1, Find(lookup, 7));
        lookup.Add(connected, 4); // counted again after its removal: found, not skipped
        Assert.Equal(4, Find(lookup, 7));
        Assert.Equal(2, lookup.Count);
    }

    [Fact]
    public void A_socket_on_the_ipv6_wildcard_takes_ipv4_too_unless_it_is_v6_only_and_an_ipv4_one_never_takes_ipv6()
    {
        var ours6 = NetAddress.Parse("fd66::1");
        var peer6 = NetAddress.Parse("fd66::2");
        int FindFrom(SocketLookup lookup, NetAddress to, NetAddress from, ushort port) =>
            lookup.TryFind(IpProtocols.Udp, to, port, from, 7, out int slot) ? slot : -1;
        var lookup = new SocketLookup(16);
        var dualStack = FlowKey.Listener(IpProtocols.Udp, HostInterface.AnyV6, 5000);
        var v6Only = FlowKey.Listener(IpProtocols.Udp, HostInterface.AnyV6, 5001);
        var v4 = FlowKey.Listener(IpProtocols.Udp, NetAddress.FromV4(0), 5002);
        lookup.Add(dualStack, 1, dualStack: true);
        lookup.Add(v6Only, 2);
        lookup.Add(v4, 3);

        Assert.Equal(1, FindFrom(lookup, ours6, peer6, 5000));
        Assert.Equal(1, FindFrom(lookup, Ours, Peer, 5000));
        Assert.Equal(2, FindFrom(lookup, ours6, peer6, 5001));
        Assert.Equal(-1, FindFrom(lookup, Ours, Peer, 5001));
        Assert.Equal(3, FindFrom(lookup, Ours, Peer, 5002));
        Assert.Equal(-1, FindFrom(lookup, ours6, peer6, 5002));

        lookup.Remove(dualStack, dualStack: true);
        Assert.Equal(-1, FindFrom(lookup, Ours, Peer, 5000));
        // A v6-only socket on the port the dual-stack one left: IPv4 no longer looks there.
        lookup.Add(FlowKey.Listener(IpProtocols.Udp, HostInterface.AnyV6, 5000), 5);
        Assert.Equal(5, FindFrom(lookup, ours6, peer6, 5000));
        Assert.Equal(-1, FindFrom(lookup, Ours, Peer, 5000));
    }

    [Fact]
    public void A_reuseport_group_spreads_senders_over_its_members_each_sender_to_one_and_shrinks_back_to_a_socket()
    {
        var lookup = new SocketLookup(16);
        var key = FlowKey.Listener(IpProtocols.Udp, NetAddress.FromV4(0), 5000);
        lookup.Add(key, 1, reusePort: true);
        lookup.Add(key, 2, reusePort: true);
        lookup.Add(key, 3, reusePort: true);
        Assert.Equal(1, lookup.Count); // one key, three members

        var chosen = Enumerable.Range(1000, 3000).Select(port => Find(lookup, (ushort)port)).ToList();
        foreach (int member in new[] { 1, 2, 3 })
        {
            Assert.InRange(chosen.Count(slot => slot == member), 700, 1300); // about a third each
        }
        Assert.Equal(chosen, Enumerable.Range(1000, 3000).Select(port => Find(lookup, (ushort)port))); // the same sender, the same member

        lookup.Remove(key, slot: 2);
        Assert.All(Enumerable.Range(1000, 300), port => Assert.Contains(Find(lookup, (ushort)port), new[] { 1, 3 }));
        lookup.Remove(key, slot: 1);
        Assert.All(Enumerable.Range(1000, 300), port => Assert.Equal(3, Find(lookup, (ushort)port))); // a socket again
        lookup.Add(key, 4, reusePort: true);
        Assert.Contains(4, Enumerable.Range(1000, 300).Select(port => Find(lookup, (ushort)port))); // a group again
        lookup.Remove(key, slot: 3);
        lookup.Remove(key, slot: 4);
        Assert.Equal(-1, Find(lookup, 1000));
        Assert.Equal(0, lookup.Count);
    }

    private static int Segment(SocketLookup lookup, ushort sourcePort, byte flags) =>
        lookup.TryFind(IpProtocols.Tcp, Ours, 5000, Peer, sourcePort, out int slot, flags) ? slot : -1;

    [Fact]
    public void A_tcp_connection_keeps_to_the_reuseport_member_its_syn_chose_while_others_join_and_leave()
    {
        var lookup = new SocketLookup(16);
        var key = FlowKey.Listener(IpProtocols.Tcp, NetAddress.FromV4(0), 5000);
        lookup.Add(key, 1, reusePort: true);
        lookup.Add(key, 2, reusePort: true);
        var ports = Enumerable.Range(1000, 400).Select(port => (ushort)port).ToList();
        var chosen = ports.ToDictionary(port => port, port => Segment(lookup, port, TcpHeader.Syn));
        Assert.InRange(chosen.Values.Count(slot => slot == 1), 120, 280); // spread over both
        Assert.Equal(400, lookup.Pins);

        // A third listener joins: the hash would now send a third of these connections elsewhere; their pins keep them.
        lookup.Add(key, 3, reusePort: true);
        Assert.All(ports, port => Assert.Equal(chosen[port], Segment(lookup, port, TcpHeader.Ack)));
        Assert.Contains(3, Enumerable.Range(2000, 300).Select(port => Segment(lookup, (ushort)port, TcpHeader.Syn))); // new ones reach it

        // Member 1 leaves: its connections are gone with it; member 2's stay where they are.
        lookup.Remove(key, slot: 1);
        Assert.All(ports.Where(port => chosen[port] == 2), port => Assert.Equal(2, Segment(lookup, port, TcpHeader.Ack)));
        Assert.All(ports.Where(port => chosen[port] == 1), port => Assert.Contains(Segment(lookup, port, TcpHeader.Ack), new[] { 2, 3 }));

        // Member 2 stops listening (its connections go on): new connections go to 3 alone, its own stay with it.
        lookup.StopAccepting(key, 2);
        Assert.All(Enumerable.Range(3000, 100), port => Assert.Equal(3, Segment(lookup, (ushort)port, TcpHeader.Syn)));
        Assert.All(ports.Where(port => chosen[port] == 2), port => Assert.Equal(2, Segment(lookup, port, TcpHeader.Ack)));

        // A FIN from the peer keeps the pin (the last ACK needs it); an RST lets go; a SYN-ACK pins nothing.
        int before = lookup.Pins;
        var closing = ports.First(port => chosen[port] == 2);
        Segment(lookup, closing, TcpHeader.Fin | TcpHeader.Ack);
        Assert.Equal(2, Segment(lookup, closing, TcpHeader.Ack));
        Segment(lookup, ports.First(port => chosen[port] == 2 && port != closing), TcpHeader.Rst);
        Segment(lookup, 9000, TcpHeader.Syn | TcpHeader.Ack);
        Assert.Equal(before - 1, lookup.Pins);
    }

    [Fact]
    public void Connections_made_before_a_tcp_group_was_stay_with_its_first_listener()
    {
        var lookup = new SocketLookup(16);
        var key = FlowKey.Listener(IpProtocols.Tcp, NetAddress.FromV4(0), 5000);
        lookup.Add(key, 1);
        var early = Enumerable.Range(1000, 100).Select(port => (ushort)port).ToList();
        Assert.All(early, port => Assert.Equal(1, Segment(lookup, port, TcpHeader.Syn))); // a listener alone: nothing pinned
        lookup.Add(key, 2, reusePort: true);
        lookup.StopAccepting(key, 1); // an inherited listener, say: the worker takes the new ones
        Assert.All(early, port => Assert.Equal(1, Segment(lookup, port, TcpHeader.Ack)));
        Assert.All(Enumerable.Range(2000, 100), port => Assert.Equal(2, Segment(lookup, (ushort)port, TcpHeader.Syn)));
        Assert.All(Enumerable.Range(2000, 100), port => Assert.Equal(2, Segment(lookup, (ushort)port, TcpHeader.Ack)));

        // A listener that stopped listening before a group formed takes no new connections in it either (a server's
        // second instance started after the first one stopped listening).
        var later = FlowKey.Listener(IpProtocols.Tcp, NetAddress.FromV4(0), 6000);
        lookup.Add(later, 3);
        lookup.StopAccepting(later, 3);
        lookup.Add(later, 4, reusePort: true);
        Assert.All(Enumerable.Range(3000, 100), port =>
            Assert.Equal(4, lookup.TryFind(IpProtocols.Tcp, Ours, 6000, Peer, (ushort)port, out int slot, TcpHeader.Syn) ? slot : -1));
    }

    [Fact]
    public void Connections_a_listener_handed_to_the_member_that_joined_it_go_to_that_member()
    {
        var lookup = new SocketLookup(16);
        var key = FlowKey.Listener(IpProtocols.Tcp, NetAddress.FromV4(0), 5000);
        var connection = new FlowKey(IpProtocols.Tcp, Ours, 5000, Peer, 1234);
        lookup.Pin(connection, 2); // no group yet: nothing to pin in
        lookup.Add(key, 1);
        Assert.Equal(1, Segment(lookup, 1234, TcpHeader.Syn)); // made by the first listener, alone: not pinned
        lookup.Add(key, 2, reusePort: true);
        lookup.StopAccepting(key, 1);
        Assert.Equal(1, Segment(lookup, 1234, TcpHeader.Ack)); // the group's first member, as before the hand-over

        lookup.Pin(connection, 2); // the first handed it to the second
        Assert.Equal(2, Segment(lookup, 1234, TcpHeader.Ack));
        Assert.Equal(2, Segment(lookup, 1234, TcpHeader.Fin | TcpHeader.Ack));
        Assert.Equal(1, Segment(lookup, 1235, TcpHeader.Ack)); // only that connection
    }
}
