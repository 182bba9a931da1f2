// kvdb: a key-value store that answers one datagram with one datagram.
//   "SET key value" -> "OK"      "GET key" -> "VALUE value" or "NOT_FOUND"      "DEL key" -> "OK"
//   A request may start with a tag, "#N ", that the answer repeats, so a client can match answers to requests.
// Usage: kvdb [PORT]   (default 6379)
//
// GET and DEL allocate nothing: requests are parsed as bytes, keys looked up through a span, answers written into
// one reusable buffer. A store that allocated per request would stall in the garbage collector every few
// milliseconds at tens of thousands of requests a second, and its clients would see those stalls as latency.
using System.Net;
using System.Text;
using Norman.Client;

int port = args.Length > 0 && int.TryParse(args[0], out int p) ? p : 6379;
var store = new Dictionary<string, byte[]>();
var byKey = store.GetAlternateLookup<ReadOnlySpan<char>>();

using var socket = new NormanUdpSocket();
socket.Bind(port);
Console.WriteLine($"kvdb: serving on udp {socket.LocalEndPoint}");
Console.Out.Flush();

var request = new byte[NormanUdpSocket.MaxPayload];
var answer = new byte[NormanUdpSocket.MaxPayload];
Span<char> key = stackalloc char[NormanUdpSocket.MaxPayload];
while (true)
{
    int length = socket.Receive(request, out IPEndPoint from);
    var text = request.AsSpan(0, length);
    int written = 0;
    if (text.Length > 1 && text[0] == (byte)'#' && text.IndexOf((byte)' ') is > 0 and var end)
    {
        written = Append(text[..(end + 1)]);
        text = text[(end + 1)..];
    }
    var command = Word(text, out var rest);
    var name = Word(rest, out var value);
    int keyLength = Encoding.UTF8.GetChars(name, key);
    if (Is(command, "SET") && value.Length > 0)
    {
        store[key[..keyLength].ToString()] = value.ToArray();
        written += Append("OK"u8);
    }
    else if (Is(command, "GET") && name.Length > 0 && value.Length == 0)
    {
        written += byKey.TryGetValue(key[..keyLength], out var stored) ? Append("VALUE "u8) + Append(stored) : Append("NOT_FOUND"u8);
    }
    else if (Is(command, "DEL") && name.Length > 0 && value.Length == 0)
    {
        written += Append(byKey.Remove(key[..keyLength]) ? "OK"u8 : "NOT_FOUND"u8);
    }
    else
    {
        written += Append("ERROR usage: SET key value | GET key | DEL key"u8);
    }
    socket.SendTo(answer.AsSpan(0, Math.Min(written, answer.Length)), from);

    int Append(ReadOnlySpan<byte> bytes)
    {
        int room = Math.Min(bytes.Length, answer.Length - written);
        bytes[..room].CopyTo(answer.AsSpan(written));
        return room;
    }
}

// The first space-separated word, and what follows its space (for SET, the value keeps its own spaces).
static ReadOnlySpan<byte> Word(ReadOnlySpan<byte> text, out ReadOnlySpan<byte> rest)
{
    int space = text.IndexOf((byte)' ');
    rest = space < 0 ? ReadOnlySpan<byte>.Empty : text[(space + 1)..];
    return space < 0 ? text : text[..space];
}

static bool Is(ReadOnlySpan<byte> word, string command) => Ascii.EqualsIgnoreCase(word, command);
