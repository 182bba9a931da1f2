// echo-server: sends every datagram back to where it came from, through Norman's pipes.
// Usage: echo-server [PORT] [--count N]   (default port 7; a port below 1024 needs root)
using System.Net;
using Norman.Client;

int port = args.Length > 0 && int.TryParse(args[0], out int p) ? p : 7;
long limit = args.Length > 2 && args[1] == "--count" ? long.Parse(args[2]) : long.MaxValue;

using var socket = new NormanUdpSocket();
socket.Bind(port);
Console.WriteLine($"echo-server: listening on udp {socket.LocalEndPoint}");
Console.Out.Flush();

var buffer = new byte[NormanUdpSocket.MaxPayload];
for (long echoed = 0; echoed < limit; echoed++)
{
    int length = socket.Receive(buffer, out IPEndPoint from);
    socket.SendTo(buffer.AsSpan(0, length), from);
}
