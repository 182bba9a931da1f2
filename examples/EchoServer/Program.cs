// echo-server: sends back whatever it receives, through Norman's pipes.
// Usage: echo-server [PORT] [--count N] [--address ADDRESS] [--v6only] [--tcp]
//   UDP (the default): every datagram back to where it came from, N datagrams at most; bound to ADDRESS (0.0.0.0 by
//   default; :: for IPv6 and IPv4 both, as a dual-stack socket, or IPv6 alone with --v6only).
//   --tcp: every connection's bytes back on it, until the client closes its side; connections served at once (on
//   ADDRESS too).
// Port 7 by default; a port below 1024 needs root.
using System.Net;
using Norman.Client;

int port = args.Length > 0 && int.TryParse(args[0], out int p) ? p : 7;
int count = Array.IndexOf(args, "--count");
long limit = count >= 0 && count + 1 < args.Length ? long.Parse(args[count + 1]) : long.MaxValue;
int addressAt = Array.IndexOf(args, "--address");
var address = addressAt >= 0 && addressAt + 1 < args.Length ? IPAddress.Parse(args[addressAt + 1]) : IPAddress.Any;

if (args.Contains("--tcp"))
{
    using var listener = new NormanTcpListener(new IPEndPoint(address, port));
    Console.WriteLine($"echo-server: listening on tcp {listener.LocalEndPoint}");
    Console.Out.Flush();
    while (true)
    {
        var connection = await listener.AcceptAsync();
        _ = Task.Run(async () =>
        {
            await using (connection)
            {
                // Stream.CopyTo: read, write back, until the client's FIN; then our FIN.
                await connection.CopyToAsync(connection);
            }
        });
    }
}

using var socket = new NormanUdpSocket { V6Only = args.Contains("--v6only") };
socket.Bind(port, address);
Console.WriteLine($"echo-server: listening on udp {socket.LocalEndPoint}");
Console.Out.Flush();

var buffer = new byte[NormanUdpSocket.MaxPayload];
for (long echoed = 0; echoed < limit; echoed++)
{
    int length = socket.Receive(buffer, out IPEndPoint from);
    socket.SendTo(buffer.AsSpan(0, length), from);
}
