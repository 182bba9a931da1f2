// kvdb: a key-value store that answers one datagram with one datagram.
//   "SET key value" -> "OK"      "GET key" -> "VALUE value" or "NOT_FOUND"      "DEL key" -> "OK"
//   A request may start with a tag, "#N ", that the answer repeats, so a client can match answers to requests.
// Usage: kvdb [PORT]   (default 6379)
using System.Net;
using System.Text;
using Norman.Client;

int port = args.Length > 0 && int.TryParse(args[0], out int p) ? p : 6379;
var store = new Dictionary<string, string>();

using var socket = new NormanUdpSocket();
socket.Bind(port);
Console.WriteLine($"kvdb: serving on udp {socket.LocalEndPoint}");
Console.Out.Flush();

var buffer = new byte[NormanUdpSocket.MaxPayload];
while (true)
{
    int length = socket.Receive(buffer, out IPEndPoint from);
    string text = Encoding.UTF8.GetString(buffer, 0, length);
    string tag = "";
    if (text.StartsWith('#') && text.IndexOf(' ') is > 0 and var end)
    {
        tag = text[..(end + 1)];
        text = text[(end + 1)..];
    }
    var words = text.Split(' ', 3);
    string reply = tag + (words[0].ToUpperInvariant(), words.Length) switch
    {
        ("SET", 3) => Set(words[1], words[2]),
        ("GET", 2) => store.TryGetValue(words[1], out var value) ? $"VALUE {value}" : "NOT_FOUND",
        ("DEL", 2) => store.Remove(words[1]) ? "OK" : "NOT_FOUND",
        _ => "ERROR usage: SET key value | GET key | DEL key",
    };
    socket.SendTo(Encoding.UTF8.GetBytes(reply), from);
}

string Set(string key, string value)
{
    store[key] = value;
    return "OK";
}
