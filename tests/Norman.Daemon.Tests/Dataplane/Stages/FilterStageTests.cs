using Norman.Core.Packets;
using Norman.Daemon.Dataplane;
using Norman.Daemon.Dataplane.Stages;
using Norman.Daemon.Policy;

namespace Norman.Daemon.Tests.Dataplane.Stages;

public sealed class FilterStageTests : IDisposable
{
    private readonly StageRig _rig = new();
    /// <summary>Policies are compiled the way the daemon compiles them: by a store, into the snapshot an engine takes.</summary>
    private readonly EngineHarness _compiler = new();
    private readonly PolicyStore _store;
    private readonly Conntrack _conntrack = new(1024, System.Diagnostics.Stopwatch.Frequency);

    public FilterStageTests() => _store = new PolicyStore(_compiler.Engine, _compiler.Names, null);

    public void Dispose()
    {
        _rig.Dispose();
        _compiler.Dispose();
    }

    private FilterStage Stage(Chain chain) => new(chain, _rig.Counters, _rig.Sockets, _rig.Replies, _conntrack);

    private long Rule(Chain chain, string rule) => _store.Add(chain, FilterRuleParser.Words(rule)).Handle;

    private PolicySnapshot Policy()
    {
        _compiler.Breathe();
        return _compiler.Engine.Policy;
    }

    private int ReceiveFor(AppSide app, ushort port)
    {
        int index = _rig.ReceiveParsed(StageRig.UdpFromPeer(port));
        _rig.Batch.SocketSlot(index) = app.Socket.Pipe.Slot;
        return index;
    }

    [Fact]
    public void A_drop_rule_stops_its_packets_remembering_the_rule_and_counting_against_the_socket()
    {
        var dns = _rig.Bind(53);
        var other = _rig.Bind(54);
        long handle = Rule(Chain.Ingress, "udp dport 53 drop");
        int dropped = ReceiveFor(dns, 53);
        int passed = ReceiveFor(other, 54);

        Stage(Chain.Ingress).Run(_rig.Batch, first: 0, Policy(), _rig.Now);

        Assert.Equal(DropReason.FilteredIngress, _rig.Batch.DropReasonOf(dropped));
        Assert.Equal(1, _rig.Batch.FilterVerdict(dropped));
        Assert.Equal(handle, _rig.Batch.DecidingRule(dropped));
        Assert.False(_rig.Batch.IsDone(passed));
        Assert.Equal(1, dns.Socket.Pipe.Counters.Drops(DropReason.FilteredIngress));
        Assert.Equal(1, _rig.Counters.Drops(DropReason.FilteredIngress));
        Assert.Empty(_rig.Outbox());
    }

    [Theory]
    [InlineData("udp dport 53 reject", IcmpHeader.PortUnreachableCode)]
    [InlineData("udp dport 53 reject with icmp type admin-prohibited", 13)]
    public void A_reject_rule_on_ingress_answers_with_the_code_it_names(string rule, byte code)
    {
        var dns = _rig.Bind(53);
        Rule(Chain.Ingress, rule);
        int rejected = ReceiveFor(dns, 53);

        Stage(Chain.Ingress).Run(_rig.Batch, first: 0, Policy(), _rig.Now);

        Assert.Equal(2, _rig.Batch.FilterVerdict(rejected));
        var answer = Assert.Single(_rig.Outbox());
        Assert.Equal((IcmpHeader.DestinationUnreachableV4, code), (answer.Packet.IcmpType, answer.Packet.IcmpCode));
    }

    [Fact]
    public void Egress_filters_only_from_first_and_never_answers()
    {
        var app = _rig.Bind(5000);
        Rule(Chain.Egress, "udp dport 9 reject");
        int notScheduled = _rig.ReceiveParsed(StageRig.Udp(StageRig.HostAddress, 5000, StageRig.PeerAddress, 9));
        int scheduled = _rig.ReceiveParsed(StageRig.Udp(StageRig.HostAddress, 5000, StageRig.PeerAddress, 9));
        _rig.Batch.SocketSlot(scheduled) = app.Socket.Pipe.Slot;

        Stage(Chain.Egress).Run(_rig.Batch, first: 1, Policy(), _rig.Now);

        Assert.False(_rig.Batch.IsDone(notScheduled));
        Assert.Equal(DropReason.FilteredEgress, _rig.Batch.DropReasonOf(scheduled));
        Assert.Empty(_rig.Outbox());
    }

    [Fact]
    public void With_ct_state_rules_an_answer_to_what_we_sent_is_established_and_a_stranger_is_new()
    {
        var app = _rig.Bind(5000);
        Rule(Chain.Ingress, "ct state established accept");
        Rule(Chain.Ingress, "udp dport 5000 drop");
        var policy = Policy();
        _rig.Batch.Clear();
        int sent = _rig.ReceiveParsed(StageRig.Udp(StageRig.HostAddress, 5000, StageRig.PeerAddress, 9));
        _rig.Batch.SocketSlot(sent) = app.Socket.Pipe.Slot;
        Stage(Chain.Egress).Run(_rig.Batch, first: 0, policy, _rig.Now);
        _rig.Batch.Clear();
        int answer = _rig.ReceiveParsed(StageRig.Udp(StageRig.PeerAddress, 9, StageRig.HostAddress, 5000));
        int stranger = _rig.ReceiveParsed(StageRig.Udp(StageRig.PeerAddress, 10, StageRig.HostAddress, 5000));

        Stage(Chain.Ingress).Run(_rig.Batch, first: 0, policy, _rig.Now);

        Assert.False(_rig.Batch.IsDone(answer));
        Assert.True(_rig.Batch.IsDone(stranger));
    }
}
