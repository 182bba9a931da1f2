using Norman.Core.Protocol;

namespace Norman.Core.Tests.Protocol;

public class ControlProtocolTests
{
    [Fact]
    public void A_request_survives_framing_and_names_its_version()
    {
        var frame = ControlProtocol.Encode(new ControlRequest { Id = 9, Op = ControlProtocol.Ops.Bind, Protocol = "udp", Port = 5000 });
        int length = ControlProtocol.ReadLength(frame);
        Assert.Equal(frame.Length - 4, length);
        string json = System.Text.Encoding.UTF8.GetString(frame, 4, length);
        Assert.Contains("\"version\":1", json);
        Assert.Contains("\"op\":\"bind\"", json);

        var decoded = ControlProtocol.DecodeRequest(frame.AsSpan(4));
        Assert.Equal(5000, decoded.Port);
        Assert.Equal(9, decoded.Id);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(ControlProtocol.MaxMessageBytes + 1)]
    public void An_absurd_length_prefix_is_refused(int length)
    {
        var prefix = BitConverter.GetBytes(length);
        Assert.Throws<InvalidDataException>(() => ControlProtocol.ReadLength(prefix));
    }

    [Fact]
    public void The_socket_path_comes_from_the_flag_then_the_environment_then_the_default()
    {
        Assert.Equal("/x.sock", ControlProtocol.ResolveSocketPath("/x.sock"));
        string? saved = Environment.GetEnvironmentVariable(ControlProtocol.SocketPathVariable);
        try
        {
            Environment.SetEnvironmentVariable(ControlProtocol.SocketPathVariable, "/env.sock");
            Assert.Equal("/env.sock", ControlProtocol.ResolveSocketPath(null));
            Environment.SetEnvironmentVariable(ControlProtocol.SocketPathVariable, null);
            Assert.Equal(ControlProtocol.DefaultSocketPath, ControlProtocol.ResolveSocketPath(null));
        }
        finally
        {
            Environment.SetEnvironmentVariable(ControlProtocol.SocketPathVariable, saved);
        }
    }
}
