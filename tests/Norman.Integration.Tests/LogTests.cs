using System.Collections.Concurrent;
using Norman.Client;
using Norman.Daemon;
using Norman.Daemon.Control;

namespace Norman.Integration.Tests;

public sealed class LogTests
{
    private sealed class RecordingLog : ILogSink
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public void Info(string message) => Lines.Enqueue("info: " + message);

        public void Warn(string message) => Lines.Enqueue("warning: " + message);

        public void Packet(string message) => Lines.Enqueue("filter: " + message);
    }

    [Fact]
    public async Task Binds_closes_and_every_policy_change_are_logged_with_who_made_them()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"norman-log-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var log = new RecordingLog();
        var daemon = NormanDaemon.Start(new DaemonOptions { SocketPath = Path.Combine(directory, "norman.sock"), LineRateBitsPerSecond = 0 }, log);
        try
        {
            using (var socket = new NormanUdpSocket(daemon.SocketPath))
            {
                socket.Bind(5000);
            }
            string[] Norman(params string[] words) => [.. words, "--socket", daemon.SocketPath];
            await ApplicationProcessTests.RunNormanAsync(Norman("filter", "add", "ingress", "udp", "dport", "80", "drop"));
            await ApplicationProcessTests.RunNormanAsync(Norman("filter", "policy", "ingress", "drop"));
            await ApplicationProcessTests.RunNormanAsync(Norman("filter", "delete", "1"));
            await ApplicationProcessTests.RunNormanAsync(Norman("filter", "flush"));

            string text = string.Join('\n', log.Lines);
            Assert.Matches(@"info: bind udp 0\.0\.0\.0:5000 by ", text);
            Assert.Matches(@"info: close udp 0\.0\.0\.0:5000 of ", text);
            string who = @"norman \(pid \d+, uid \d+\)";
            Assert.Matches($@"info: filter: {who} added to ingress: udp dport 80 drop \(handle 1\)", text);
            Assert.Matches($@"info: filter: {who} set the ingress policy to drop", text);
            Assert.Matches($@"info: filter: {who} deleted rule 1", text);
            Assert.Matches($@"info: filter: {who} flushed both chains", text);
        }
        finally
        {
            await daemon.DisposeAsync();
            Directory.Delete(directory, recursive: true);
        }
    }
}
