using Norman.Client;
using Norman.Core.Protocol;
using Norman.Core.Shm;
using Microsoft.Win32.SafeHandles;

namespace Norman.Integration.Tests;

/// <summary>
/// A TCP listener passed across exec, at the control protocol (the interposer's side is NormanRunTests'): a listener
/// marked keep-across-exec outlives its connection while its process lives, and the program the process became joins it
/// with the descriptor its program held (listener-holder), after which the kept one is gone.
/// </summary>
public sealed class ExecHandoverTests
{
    [Fact]
    public async Task A_kept_listener_waits_for_the_next_program_of_its_process_which_joins_it_with_the_descriptor_it_holds()
    {
        await using var daemon = new DaemonFixture();
        var control = daemon.Daemon.Control;
        // Two open files: one stands for the readiness descriptor the program holds the listener by, one for any other.
        using SafeFileHandle heldFile = File.OpenHandle("/dev/null"), strangerFile = File.OpenHandle("/dev/null");
        int held = (int)heldFile.DangerousGetHandle(), stranger = (int)strangerFile.DangerousGetHandle();
        var received = new List<int>();
        try
        {
            long listener;
            ushort port;
            using (var before = ControlChannel.Connect(daemon.SocketPath)) // the program before exec
            {
                var bound = before.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "tcp", Port = 0 }, received);
                listener = bound.Socket!.SocketId;
                port = (ushort)bound.Socket.LocalPort;
                before.Call(new ControlRequest { Op = ControlProtocol.Ops.ListenerHolder, SocketId = listener }, sentFds: [held]);
                before.Call(new ControlRequest { Op = ControlProtocol.Ops.KeepAcrossExec, SocketId = listener, Keep = true });
            }
            Assert.True(ApplicationProcessTests.WaitFor(() => control.WaitingForExec == 1), "the kept listener was not kept");
            Assert.NotNull(control.Sockets.Find(listener));

            using var after = ControlChannel.Connect(daemon.SocketPath); // the program exec'd: the same process, a new connection
            var refused = Assert.Throws<NormanException>(() =>
                after.Call(new ControlRequest { Op = ControlProtocol.Ops.Inherit }, received, sentFds: [stranger]));
            Assert.Contains("no Norman TCP listener's", refused.Message);
            Assert.Equal(1, control.WaitingForExec);

            var joined = after.Call(new ControlRequest { Op = ControlProtocol.Ops.Inherit }, received, sentFds: [held]);
            Assert.Equal(port, (ushort)joined.Socket!.LocalPort);
            Assert.True(ApplicationProcessTests.WaitFor(() => control.WaitingForExec == 0 && control.Sockets.Find(listener) is null),
                "the kept listener outlived the join by its own process's next program");
            Assert.NotNull(control.Sockets.Find(joined.Socket.SocketId));

            var udp = after.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "udp", Port = 0 }, received);
            var notListener = Assert.Throws<NormanException>(() =>
                after.Call(new ControlRequest { Op = ControlProtocol.Ops.KeepAcrossExec, SocketId = udp.Socket!.SocketId, Keep = true }));
            Assert.Contains("not a TCP listener", notListener.Message);
        }
        finally
        {
            FdPassing.CloseAll(received);
        }
    }

    /// <summary>
    /// The program exec'd can join before the daemon has seen the old program's connection close (its release runs on
    /// the pool, late on a loaded machine): it still gets the connections the old one handed over, and the kept
    /// listener closes with the old connection instead of waiting for a next program.
    /// </summary>
    [Fact]
    public async Task The_next_program_joining_before_the_old_connection_closes_still_gets_the_connections_handed_over()
    {
        await using var daemon = new DaemonFixture();
        var control = daemon.Daemon.Control;
        using SafeFileHandle heldFile = File.OpenHandle("/dev/null");
        int held = (int)heldFile.DangerousGetHandle();
        var received = new List<int>();
        try
        {
            var before = ControlChannel.Connect(daemon.SocketPath); // the program before exec, its connection not yet closed
            var bound = before.Call(new ControlRequest { Op = ControlProtocol.Ops.Bind, Protocol = "tcp", Port = 0 }, received);
            long listener = bound.Socket!.SocketId;
            before.Call(new ControlRequest { Op = ControlProtocol.Ops.ListenerHolder, SocketId = listener }, sentFds: [held]);
            var waiting = new HandedOverConnection
            {
                LocalAddress = "198.18.0.1", RemoteAddress = "198.18.0.2", RemotePort = 40001, SendNext = 7, SendWindow = 1000,
                MaxSendWindow = 1000, SendMss = 1460, ReceiveNext = 9, Received = "GET /\n"u8.ToArray(),
            };
            before.Call(new ControlRequest { Op = ControlProtocol.Ops.KeepAcrossExec, SocketId = listener, Keep = true, HandedOver = [waiting] });

            using var after = ControlChannel.Connect(daemon.SocketPath);
            var joined = after.Call(new ControlRequest { Op = ControlProtocol.Ops.Inherit }, received, sentFds: [held]);
            Assert.Equal("GET /\n"u8.ToArray(), joined.HandedOver!.Single().Received);

            before.Dispose(); // the exec's close, seen only now
            Assert.True(ApplicationProcessTests.WaitFor(() => control.Sockets.Find(listener) is null),
                "the kept listener outlived its old program's connection, though the next program had joined");
            Assert.Equal(0, control.WaitingForExec);
            Assert.NotNull(control.Sockets.Find(joined.Socket!.SocketId));
        }
        finally
        {
            FdPassing.CloseAll(received);
        }
    }
}
