using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Norman.AspNetCore;

public static class NormanWebHostExtensions
{
    /// <summary>
    /// Kestrel takes its connections from Norman instead of kernel sockets: one line, the application unchanged.
    /// The daemon is found at <paramref name="controlSocketPath"/>, else $NORMAN_SOCKET, else /run/norman/norman.sock.
    /// </summary>
    public static IWebHostBuilder UseNorman(this IWebHostBuilder builder, string? controlSocketPath = null) =>
        builder.ConfigureServices(services => services.AddSingleton<IConnectionListenerFactory>(new NormanConnectionListenerFactory(controlSocketPath)));
}
