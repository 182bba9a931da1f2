// webapp: a minimal ASP.NET Core API. With --kernel it runs on Kestrel's own sockets, otherwise on Norman.
// Usage: webapp [--urls http://0.0.0.0:8080] [--kernel]
//   GET /           a greeting
//   GET /bytes/{n}  n bytes (a download of any size)
//   POST /echo      the request body back
using Norman.AspNetCore;

bool kernel = args.Contains("--kernel");
// Taken out before ASP.NET Core reads the command line, which would take the next argument as its value.
var builder = WebApplication.CreateBuilder(args.Where(argument => argument != "--kernel").ToArray());
builder.Logging.ClearProviders();
if (!kernel)
{
    builder.WebHost.UseNorman();
}
var app = builder.Build();

app.MapGet("/", () => "Hello from ASP.NET Core on Norman\n");
app.MapGet("/bytes/{count:int}", (int count) => Results.Bytes(Enumerable.Range(0, count).Select(i => (byte)('a' + i % 26)).ToArray(), "application/octet-stream"));
app.MapPost("/echo", async (HttpRequest request, HttpResponse response) =>
{
    response.ContentType = "application/octet-stream";
    await request.Body.CopyToAsync(response.Body);
});

app.Lifetime.ApplicationStarted.Register(() =>
{
    Console.WriteLine($"webapp: listening on {string.Join(", ", app.Urls)}");
    Console.Out.Flush();
});
app.Run();
