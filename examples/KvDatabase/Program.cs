// kvdb: a key-value store, over UDP (one datagram answers one datagram) and over TCP (one line answers one line).
//   "SET key value" -> "OK"      "GET key" -> "VALUE value" or "NOT_FOUND"      "DEL key" -> "OK"
//   Over UDP a request may start with a tag, "#N ", that the answer repeats, so a client can match answers to requests.
//   Over TCP each request is a line; "QUIT" answers "BYE" and closes the connection.
// Usage: kvdb [PORT]   (default 6379, the same number for both)
//
// The UDP path allocates nothing for GET and DEL: requests are parsed as bytes, keys looked up through a span, answers
// written into one reusable buffer. A store that allocated per request would stall in the garbage collector every
// few milliseconds at tens of thousands of requests a second, and its clients would see those stalls as latency.
using System.Buffers;
using System.Net;
using Norman.Client;
using KvDatabase;

int port = args.Length > 0 && int.TryParse(args[0], out int p) ? p : 6379;
var store = new Store();

using var socket = new NormanUdpSocket();
socket.Bind(port);
using var listener = new NormanTcpListener(port);
Console.WriteLine($"kvdb: serving on udp {socket.LocalEndPoint} and tcp {listener.LocalEndPoint}");
Console.Out.Flush();
_ = Task.Run(async () =>
{
    while (true)
    {
        var connection = await listener.AcceptAsync();
        _ = Task.Run(() => ServeAsync(connection));
    }
});

var request = new byte[NormanUdpSocket.MaxPayload];
var answer = new byte[NormanUdpSocket.MaxPayload];
while (true)
{
    int length = socket.Receive(request, out IPEndPoint from);
    var text = request.AsSpan(0, length);
    int written = 0;
    if (text.Length > 1 && text[0] == (byte)'#' && text.IndexOf((byte)' ') is > 0 and var end)
    {
        text[..(end + 1)].CopyTo(answer);
        written = end + 1;
        text = text[(end + 1)..];
    }
    written += store.Answer(text, answer.AsSpan(written));
    socket.SendTo(answer.AsSpan(0, written), from);
}

// One TCP client: a line in, a line out, until QUIT or the client's end.
async Task ServeAsync(NormanTcpStream connection)
{
    await using (connection)
    {
        var input = connection.Pipe.Input;
        var output = connection.Pipe.Output;
        while (true)
        {
            var read = await input.ReadAsync();
            var buffer = read.Buffer;
            bool quit = false;
            while (!quit && buffer.PositionOf((byte)'\n') is { } newline)
            {
                var line = buffer.Slice(0, newline).ToArray().AsSpan().TrimEnd((byte)'\r');
                buffer = buffer.Slice(buffer.GetPosition(1, newline));
                quit = System.Text.Ascii.EqualsIgnoreCase(line, "QUIT"u8);
                var reply = output.GetSpan(NormanUdpSocket.MaxPayload + 1);
                int length = quit ? Copy("BYE"u8, reply) : store.Answer(line, reply[..NormanUdpSocket.MaxPayload]);
                reply[length] = (byte)'\n';
                output.Advance(length + 1);
            }
            input.AdvanceTo(buffer.Start, buffer.End);
            await output.FlushAsync();
            if (quit || read.IsCompleted)
            {
                await output.CompleteAsync(); // our FIN after the answers
                return;
            }
        }
    }
}

static int Copy(ReadOnlySpan<byte> text, Span<byte> to)
{
    text.CopyTo(to);
    return text.Length;
}
