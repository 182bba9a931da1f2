using Norman.Core.Packets;
using Norman.Core.Pipes;
using Norman.Core.Protocol;
using Norman.Daemon.Control;

namespace Norman.Daemon.Tests.Control;

public sealed class SocketTableTests : IDisposable
{
    private readonly SocketTable _table = new(NetAddress.Parse("198.18.0.1"));
    private readonly List<NormanSocket> _made = new();

    public void Dispose() => _made.ForEach(socket => socket.Dispose());

    private NormanSocket Bind(int uid, byte protocol, bool reusePort)
    {
        var owner = new PeerIdentity(Environment.ProcessId, uid, uid, "app", "app", "/");
        return _table.Bind(owner, mayBindPrivilegedPorts: false, protocol, NetAddress.FromV4(0), 7000, pipeBytes: 0, (id, port) =>
        {
            var socket = new NormanSocket(id, owner, protocol, NetAddress.FromV4(0), port, 4, PipeLayout.DefaultSlotSize, reusePort: reusePort);
            _made.Add(socket);
            return socket;
        }, reusePort: reusePort);
    }

    private string Refusal(int uid, byte protocol, bool reusePort) =>
        Assert.Throws<ControlException>(() => Bind(uid, protocol, reusePort)).Code;

    [Fact]
    public void Sockets_that_ask_for_reuseport_share_a_port_within_one_user_and_no_one_else_joins()
    {
        Bind(1000, IpProtocols.Udp, reusePort: true);
        Bind(1000, IpProtocols.Udp, reusePort: true);
        Assert.Equal(ControlProtocol.Errors.AddressInUse, Refusal(1001, IpProtocols.Udp, reusePort: true)); // another user
        Assert.Equal(ControlProtocol.Errors.AddressInUse, Refusal(1000, IpProtocols.Udp, reusePort: false)); // it did not ask

        // TCP listeners the same (the dataplane pins each connection to the listener its SYN reached).
        Bind(1000, IpProtocols.Tcp, reusePort: true);
        Bind(1000, IpProtocols.Tcp, reusePort: true);
        Assert.Equal(ControlProtocol.Errors.AddressInUse, Refusal(1001, IpProtocols.Tcp, reusePort: true));
        Assert.Equal(ControlProtocol.Errors.AddressInUse, Refusal(1000, IpProtocols.Tcp, reusePort: false));
    }
}
