using Norman.Cli.Commands;

namespace Norman.Integration.Tests;

public sealed class KernelSocketsTests
{
    [Fact]
    public void Lines_of_proc_net_read_as_ss_prints_them()
    {
        // Two lines as the kernel writes them: a TCP listener on 127.0.0.1:53, a connected UDP socket on [::1]:5353.
        var tcp = KernelSockets.Parse("   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 34567 1 0000000000000000 100 0 0 10 0", "tcp")!;
        Assert.Equal(("LISTEN", "127.0.0.1", 53, 101, 34567L), (tcp.State, tcp.LocalAddress, tcp.LocalPort, tcp.Uid, tcp.Id));
        var udp6 = KernelSockets.Parse("  12: 00000000000000000000000001000000:14E9 00000000000000000000000001000000:0035 01 00000010:00000020 00:00000000 00000000     0        0 4242 2 0000000000000000 0",
            "udp")!;
        Assert.Equal(("ESTAB", "::1", 5353, "::1", 53), (udp6.State, udp6.LocalAddress, udp6.LocalPort, udp6.RemoteAddress, udp6.RemotePort));
        Assert.Equal((0x10L, 0x20L), (udp6.SendQ, udp6.RecvQ));
        Assert.Null(KernelSockets.Parse("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", "udp"));
    }
}
