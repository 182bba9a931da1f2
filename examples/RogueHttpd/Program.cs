// rogue-httpd: the web server someone started through a weak password. Answers every HTTP request with one page
// (HTTP/1.0: the page, then the connection closes).
// Usage: rogue-httpd [PORT]   (default 80, which needs root or CAP_NET_BIND_SERVICE)
using System.Text;
using Norman.Client;

int port = args.Length > 0 && int.TryParse(args[0], out int p) ? p : 80;
using var listener = new NormanTcpListener(port);
Console.WriteLine($"rogue-httpd: serving on tcp {listener.LocalEndPoint}");
Console.Out.Flush();

const string Body = "free stuff, just enter your password\r\n";
var page = Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Body.Length}\r\n\r\n{Body}");
while (true)
{
    var connection = await listener.AcceptAsync();
    _ = Task.Run(async () =>
    {
        await using (connection)
        {
            // Whatever the request says, once its headers are in, the page.
            var request = new byte[8192];
            int received = 0;
            while (received < request.Length && request.AsSpan(0, received).IndexOf("\r\n\r\n"u8) < 0)
            {
                int read = await connection.ReadAsync(request.AsMemory(received));
                if (read == 0)
                {
                    return;
                }
                received += read;
            }
            await connection.WriteAsync(page);
        }
    });
}
