using System.Text.Json;
using Norman.Core.Protocol;

namespace Norman.Integration.Tests;

/// <summary>`norman qos` as the administrator (and a user who is not one) runs it, against a daemon on a 1 Gbit/s wire.</summary>
public sealed class QosCommandTests : DaemonTest
{
    protected override long LineRate => 1_000_000_000;

    [Fact]
    public async Task One_command_puts_the_database_first_and_show_reports_its_class_packets_and_rate()
    {
        using var database = Daemon.Start("kvdb", "6379");
        database.ReadLine();
        string added = await Norman("qos", "add", "database", "band", "0", "rate", "200M", "dscp", "af41", "match", "app", "kvdb");
        Assert.Matches(@"database\s+0\s+1\s+200Mbit\s+line\s+34\s+-\s+\S+\s+0\s+0\s+0\s+0\s+#1 app kvdb", added);

        for (int i = 0; i < 20; i++)
        {
            Daemon.Peer.SendUdp(40000, 6379, System.Text.Encoding.ASCII.GetBytes($"SET k{i} v{i}"));
            Assert.NotNull(Daemon.Peer.TakeDatagram(TimeSpan.FromSeconds(10)));
        }
        var info = JsonSerializer.Deserialize(await Norman("qos", "show", "--json"), ControlJson.Default.QosInfo)!;
        Assert.Equal(1_000_000_000, info.LineRateBits);
        var databaseClass = info.Classes.Single(c => c.Name == "database");
        Assert.Equal(20, databaseClass.Packets);
        Assert.Equal(0, info.Classes.Single(c => c.Name == "default").Packets);
        Assert.Equal("database band 0 weight 1 rate 200M dscp 34", databaseClass.Spec);
        Assert.Equal([new QosMatchInfo { Handle = 1, Match = "app kvdb" }.Match], databaseClass.Matches.Select(m => m.Match));
    }

    [Fact]
    public async Task Change_match_and_delete_work_by_name_and_handle_and_mistakes_say_what_to_write()
    {
        await Norman("qos", "add", "bob", "weight", "2", "ceil", "300M");
        await Norman("qos", "match", "add", "bob", "app", "bobapp");
        await Norman("qos", "change", "bob", "ceil", "500M");
        var bob = JsonSerializer.Deserialize(await Norman("qos", "show", "--json"), ControlJson.Default.QosInfo)!.Classes.Single(c => c.Name == "bob");
        Assert.Equal(500_000_000, bob.CeilBits);
        Assert.Equal(2, bob.Weight);

        var (code, output) = await Try("qos", "add", "db", "rate", "2G");
        Assert.Equal(1, code);
        Assert.Contains("more than the line rate (1G)", output);
        (code, output) = await Try("qos", "match", "delete", "99");
        Assert.Equal(1, code);
        Assert.Contains("no match with handle 99", output);

        await Norman("qos", "match", "delete", bob.Matches[0].Handle.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Norman("qos", "delete", "bob");
        Assert.DoesNotContain("bob", await Norman("qos", "show"));
        Assert.Single(Daemon.Daemon.Engine.Qos.Classes);
    }

    [RootFact]
    public void Only_an_administrator_may_change_classes()
    {
        using var nobody = AppProcess.Start("norman", Daemon.SocketPath, "65534", "qos", "--socket", Daemon.SocketPath, "add", "mine", "band", "0");
        Assert.True(nobody.Process.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal(77, nobody.Process.ExitCode);
        Assert.Contains("changing QoS classes needs root", nobody.Process.StandardError.ReadToEnd());
        Assert.DoesNotContain(Daemon.Daemon.Qos.Show(), c => c.Class.Name == "mine");
    }
}
