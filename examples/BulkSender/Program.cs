// bobapp: sends full-size datagrams as fast as the pipes drain, batching on the zero-copy path; with --streams N it
// sends over N sockets at once, as bulk tools (iperf -P, parallel downloads) do to take more of a shared link.
// Usage: bobapp DEST_IP DEST_PORT [--seconds S] [--size BYTES] [--streams N]
using System.Diagnostics;
using Norman.Client;
using Norman.Core.Packets;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: bobapp DEST_IP DEST_PORT [--seconds S] [--size BYTES] [--streams N]");
    return 2;
}
var destination = NetAddress.Parse(args[0]);
ushort port = ushort.Parse(args[1]);
double seconds = Option("--seconds", 5);
int size = (int)Option("--size", NormanUdpSocket.MaxPayload);
int streams = Math.Max(1, (int)Option("--streams", 1));

var sockets = new NormanUdpSocket[streams];
for (int s = 0; s < streams; s++)
{
    sockets[s] = new NormanUdpSocket();
    sockets[s].Bind(0);
}
Console.WriteLine($"bobapp: sending {size}-byte datagrams from {sockets[0].LocalEndPoint}{(streams > 1 ? $" and {streams - 1} more sockets" : "")} to {args[0]}:{port} for {seconds} s");
Console.Out.Flush();

long sent = 0;
var clock = Stopwatch.StartNew();
while (clock.Elapsed.TotalSeconds < seconds)
{
    int round = 0;
    foreach (var socket in sockets)
    {
        int batch = 0;
        for (var buffer = socket.GetSendBuffer(); !buffer.IsEmpty && batch < 32; buffer = socket.GetSendBuffer(), batch++)
        {
            buffer[..size].Fill((byte)sent);
            socket.CommitSendTo(size, destination, port);
            sent++;
        }
        socket.Flush();
        round += batch;
    }
    if (round == 0)
    {
        // Every pipe is full: the wire is the limit. Sleep as a blocked sender would, leaving the core to others;
        // the pipes hold far more than a millisecond of the wire.
        Thread.Sleep(1);
    }
}
double rate = sent / clock.Elapsed.TotalSeconds;
Console.WriteLine($"bobapp: sent {sent} datagrams, {rate:F0} per second, {rate * size * 8 / 1e6:F1} Mbit/s of payload");
foreach (var socket in sockets)
{
    socket.Dispose();
}
return 0;

double Option(string name, double fallback)
{
    int at = Array.IndexOf(args, name);
    return at >= 0 && at + 1 < args.Length ? double.Parse(args[at + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
}
