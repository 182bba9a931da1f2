using System.Net.Sockets;
using System.Reflection;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Daemon.Control;
using Xunit.Abstractions;

namespace Norman.Integration.Tests;

/// <summary>
/// Item 4 of the hardening issue: every control operation as an ordinary user. The caller's identity is the one the
/// kernel would give (here made directly, so the test needs no second user); the process-level refusals through
/// the control socket are in FilterCommandTests and QosCommandTests.
/// </summary>
public sealed class PrivilegeTests(ITestOutputHelper output) : DaemonTest
{
    private static readonly PeerIdentity Nobody = new(Pid: Environment.ProcessId, Uid: 65534, Gid: 65534, "mallory", "mallory", "/");
    private static readonly PeerIdentity Administrator = new(Pid: Environment.ProcessId, Uid: 0, Gid: 0, "admin", "admin", "/");

    [Fact]
    public void Every_operation_of_the_protocol_has_a_privilege()
    {
        var operations = typeof(ControlProtocol.Ops).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!).ToHashSet();
        Assert.Equal(operations.Order(), ControlPlane.Operations.Keys.Order());
    }

    /// <summary>
    /// Each administrator operation, with arguments that work: run first as an ordinary user (refused, nothing
    /// changes), then as root (accepted), so a refusal cannot come from a bad request instead of the check.
    /// </summary>
    [Fact]
    public async Task An_ordinary_user_is_refused_every_administrator_operation_and_nothing_changes()
    {
        await As(Administrator, new() { Op = ControlProtocol.Ops.FilterAdd, Chain = "ingress", Rule = ["udp", "dport", "9", "drop"] });
        await As(Administrator, new() { Op = ControlProtocol.Ops.FilterSetAdd, SetName = "s", SetType = "ipv4_addr", Elements = ["203.0.113.1"] });
        await As(Administrator, new() { Op = ControlProtocol.Ops.QosAdd, Class = "c", Rule = ["band", "1"] });
        var match = (await As(Administrator, new() { Op = ControlProtocol.Ops.QosMatchAdd, Class = "c", Rule = ["app", "kvdb"] })).Qos!
            .Classes.Single(c => c.Name == "c").Matches.Single();
        long rule = Daemon.Daemon.Policy.List().Rules.Single().Rule.Handle;
        var requests = new List<ControlRequest>
        {
            new() { Op = ControlProtocol.Ops.FilterTraceStart, Expression = "udp", Count = 1 },
            new() { Op = ControlProtocol.Ops.FilterTracePoll },
            new() { Op = ControlProtocol.Ops.FilterTraceStop },
            new() { Op = ControlProtocol.Ops.FilterAdd, Chain = "egress", Rule = ["udp", "dport", "53", "drop"] },
            new() { Op = ControlProtocol.Ops.FilterPolicy, Chain = "ingress", Policy = "drop" },
            new() { Op = ControlProtocol.Ops.FilterSetAdd, SetName = "t", SetType = "inet_service", Elements = ["53"] },
            new() { Op = ControlProtocol.Ops.FilterElementAdd, SetName = "s", Elements = ["203.0.113.2"] },
            new() { Op = ControlProtocol.Ops.FilterElementDelete, SetName = "s", Elements = ["203.0.113.1"] },
            new() { Op = ControlProtocol.Ops.FilterSetDelete, SetName = "t" },
            new() { Op = ControlProtocol.Ops.FilterDelete, Handle = rule },
            new() { Op = ControlProtocol.Ops.FilterRestore, Lines = ["policy ingress accept", "add ingress udp dport 7 drop"] },
            new() { Op = ControlProtocol.Ops.FilterFlush },
            new() { Op = ControlProtocol.Ops.QosAdd, Class = "d", Rule = ["band", "2"] },
            new() { Op = ControlProtocol.Ops.QosChange, Class = "c", Rule = ["weight", "3"] },
            new() { Op = ControlProtocol.Ops.QosMatchAdd, Class = "c", Rule = ["udp", "sport", "80"] },
            new() { Op = ControlProtocol.Ops.QosMatchDelete, Handle = match.Handle },
            new() { Op = ControlProtocol.Ops.QosDelete, Class = "d" },
            new() { Op = ControlProtocol.Ops.Conntrack },
        };
        Assert.Equal(ControlPlane.Operations.Where(p => p.Value.Needs == Privilege.Administrator).Select(p => p.Key).Order(),
            requests.Select(r => r.Op).Distinct().Order());

        string policyBefore = string.Join('\n', Daemon.Daemon.Policy.Save());
        string qosBefore = QosText();
        foreach (var request in requests)
        {
            var refusal = await Assert.ThrowsAsync<ControlException>(() => As(Nobody, request));
            Assert.Equal(ControlProtocol.Errors.NotPermitted, refusal.Code);
            Assert.Contains("needs root", refusal.Message);
            Assert.Contains("uid 65534", refusal.Message);
        }
        Assert.Equal(policyBefore, string.Join('\n', Daemon.Daemon.Policy.Save()));
        Assert.Equal(qosBefore, QosText());
        Assert.Null(Daemon.Daemon.Engine.Trace);

        foreach (var request in requests)
        {
            await As(Administrator, request);
        }
        output.WriteLine($"{requests.Count} administrator operations refused to uid 65534 and accepted from root; policy and QoS unchanged by the refusals");
    }

    [Fact]
    public async Task An_ordinary_user_sees_other_users_sockets_as_ss_shows_them_and_captures_only_their_own()
    {
        using var rootSocket = new Norman.Client.NormanUdpSocket(Daemon.SocketPath);
        rootSocket.Bind(5000);

        var seen = (await As(Nobody, new() { Op = ControlProtocol.Ops.Sockets })).Sockets!.Single(s => s.LocalPort == 5000);
        Assert.Equal(0, seen.Pid);
        Assert.Equal("", seen.ProcessName);
        Assert.Equal("", seen.CommandLine);
        var stats = (await As(Nobody, new() { Op = ControlProtocol.Ops.Stats })).Stats!.Sockets.Single(s => s.LocalPort == 5000);
        Assert.Equal(0, stats.Pid);
        Assert.Equal(Environment.ProcessId, (await As(Administrator, new() { Op = ControlProtocol.Ops.Sockets })).Sockets!.Single(s => s.LocalPort == 5000).Pid);

        var session = SessionOf(Nobody);
        var capture = (await As(session, new() { Op = ControlProtocol.Ops.CaptureStart, Expression = "udp" })).Capture!;
        Assert.True(capture.OwnPacketsOnly);
        await session.ReleaseAllAsync();
    }

    [Fact]
    public async Task A_user_is_held_to_the_socket_and_pipe_memory_limits_with_a_clear_error_and_others_are_not()
    {
        // 256 MiB pipes (65536 slots of 2 KiB, both ways, and the rings' headers): three fit in the default 1 GiB.
        var big = new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "udp", Port = 0, SlotCount = 65536 };
        long each = PipeLayout.SocketRegionBytes(65536, PipeLayout.DefaultSlotSize);
        long fit = SocketTable.DefaultMaxPipeBytesPerUid / each;
        var session = SessionOf(Nobody);
        for (int i = 0; i < fit; i++)
        {
            await Daemon.Daemon.Control.HandleAsync(session, big);
        }
        var refusal = await Assert.ThrowsAsync<ControlException>(() => Daemon.Daemon.Control.HandleAsync(session, big));
        Assert.Equal(ControlProtocol.Errors.OutOfMemory, refusal.Code);
        Assert.Contains($"uid 65534 already holds {fit * each >> 20} MiB of Norman pipes", refusal.Message);
        Assert.Contains("--max-pipe-memory-per-uid", refusal.Message);
        Assert.Equal(fit, Daemon.Daemon.Control.Sockets.Count);

        // Another user is not held to the first one's use.
        using var other = new Norman.Client.NormanUdpSocket(Daemon.SocketPath);
        other.Bind(0, slotCount: 65536);
        await session.ReleaseAllAsync();
        output.WriteLine($"refused socket {fit + 1} of 256 MiB of uid 65534: {refusal.Message}");
    }

    [Fact]
    public async Task A_user_is_held_to_the_control_connection_limit_with_a_clear_error()
    {
        // Connections, not sockets: a process's sockets share one (ControlChannel.Share), so each of these stands for a process.
        await using var daemon = new DaemonFixture(configure: options => options.MaxConnectionsPerUid = 3);
        var hello = () => new ControlRequest { Op = ControlProtocol.Ops.Hello };
        var held = Enumerable.Range(0, 3).Select(_ => global::Norman.Client.ControlChannel.Connect(daemon.SocketPath)).ToList();
        held.ForEach(channel => channel.Call(hello()));
        using var fourth = global::Norman.Client.ControlChannel.Connect(daemon.SocketPath);
        var refusal = Assert.Throws<Norman.Client.NormanException>(() => fourth.Call(hello()));
        Assert.Equal(ControlProtocol.Errors.TooManySockets, refusal.Code);
        Assert.Contains("already holds 3 control connections", refusal.Message);
        Assert.Contains("--max-connections-per-uid", refusal.Message);

        // A closed connection makes room again (once the daemon has seen it close).
        held[0].Dispose();
        global::Norman.Client.ControlChannel? fifth = null;
        Assert.True(ApplicationProcessTests.WaitFor(() =>
        {
            fifth?.Dispose();
            fifth = global::Norman.Client.ControlChannel.Connect(daemon.SocketPath);
            try
            {
                fifth.Call(hello());
                return true;
            }
            catch (Norman.Client.NormanException error) when (error.Code == ControlProtocol.Errors.TooManySockets)
            {
                return false;
            }
        }));
        fifth!.Dispose();
        held.ForEach(channel => channel.Dispose());
    }

    [Fact]
    public async Task An_ordinary_user_may_run_only_so_many_captures_and_a_stopped_one_makes_room()
    {
        var session = SessionOf(Nobody);
        var capture = new ControlRequest { Op = ControlProtocol.Ops.CaptureStart, Expression = "udp" };
        for (int i = 0; i < ControlPlane.DefaultMaxCapturesPerUid; i++)
        {
            await As(session, capture);
        }
        var refusal = await Assert.ThrowsAsync<ControlException>(() => As(session, capture));
        Assert.Equal(ControlProtocol.Errors.TooManySockets, refusal.Code);
        Assert.Contains($"uid 65534 already runs {ControlPlane.DefaultMaxCapturesPerUid} captures", refusal.Message);

        // Another user is not held to it; and once the first user's captures stop, they may start again.
        await As(SessionOf(Nobody with { Uid = 1000 }), capture);
        await session.ReleaseAllAsync();
        await As(session, capture);
        await session.ReleaseAllAsync();
    }

    [Theory]
    [InlineData("2147483000")]
    [InlineData("-100")]
    [InlineData("99999999999")]
    [InlineData("1473")]
    public async Task A_traced_packet_of_a_size_no_packet_has_is_refused_with_a_clear_error(string payload)
    {
        var request = new ControlRequest { Op = ControlProtocol.Ops.FilterTrace, Chain = "ingress", Rule = ["udp", "dport", "53", "payload", payload] };
        var refusal = await Assert.ThrowsAsync<ControlException>(() => As(Nobody, request));
        Assert.Equal(ControlProtocol.Errors.InvalidArgument, refusal.Code);
        Assert.Contains("payload", refusal.Message);
        var largest = new ControlRequest { Op = ControlProtocol.Ops.FilterTrace, Chain = "ingress", Rule = ["udp", "dport", "53", "payload", "1472"] };
        Assert.Contains("len 1500", (await As(Nobody, largest)).Trace!.Packet);
    }

    [Theory]
    [InlineData("udp")]
    [InlineData("tcp")]
    public async Task A_bind_to_an_IPv6_address_the_host_does_not_have_is_refused_and_says_how_to_give_it_one(string protocol)
    {
        var refusal = await Assert.ThrowsAsync<ControlException>(() =>
            As(Nobody, new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = protocol, Address = "fd66::1", Port = 0 }));
        Assert.Equal(ControlProtocol.Errors.AddressNotAvailable, refusal.Code);
        Assert.Contains("--address6", refusal.Message);
        Assert.Equal(0, Daemon.Daemon.Control.Sockets.Count);
    }

    private string QosText() => string.Join('\n', Daemon.Daemon.Qos.Show().Select(v => v.Class + " " + string.Join(',', v.Matches)));

    private Task<ControlResponse> As(PeerIdentity caller, ControlRequest request) => As(SessionOf(caller), request);

    private async Task<ControlResponse> As(ControlSession session, ControlRequest request)
    {
        var (response, _) = await Daemon.Daemon.Control.HandleAsync(session, request);
        Assert.True(response.Ok);
        return response;
    }

    /// <summary>A control session as the daemon makes one for a connection; its connection is never used here.</summary>
    private ControlSession SessionOf(PeerIdentity caller) =>
        new(new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified), caller, Daemon.Daemon.Control, NullLog.Instance);
}
