// rogue-httpd: the server someone started through a weak password. Answers every datagram with a web page.
// Usage: rogue-httpd [PORT]   (default 80, which needs root or CAP_NET_BIND_SERVICE)
using System.Net;
using System.Text;
using Norman.Client;

int port = args.Length > 0 && int.TryParse(args[0], out int p) ? p : 80;
using var socket = new NormanUdpSocket();
socket.Bind(port);
Console.WriteLine($"rogue-httpd: serving on udp {socket.LocalEndPoint}");
Console.Out.Flush();

var page = Encoding.ASCII.GetBytes("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfree stuff, just enter your password\r\n");
var buffer = new byte[NormanUdpSocket.MaxPayload];
while (true)
{
    socket.Receive(buffer, out IPEndPoint from);
    socket.SendTo(page, from);
}
