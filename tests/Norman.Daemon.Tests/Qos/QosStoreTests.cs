using Norman.Daemon.Policy;
using Norman.Daemon.Qos;
using Norman.Daemon.Tests.Dataplane;

namespace Norman.Daemon.Tests.Qos;

/// <summary>`norman qos` words as the control plane takes them: checked, compiled, published and persisted.</summary>
public sealed class QosStoreTests : IDisposable
{
    private readonly EngineHarness _wire = new(lineRate: 1_000_000_000);
    private readonly QosStore _qos;

    public QosStoreTests()
    {
        _qos = new QosStore(_wire.Engine, _wire.Names) { LineRateBits = 1_000_000_000 };
    }

    public void Dispose()
    {
        _qos.Dispose();
        _wire.Dispose();
    }

    private static string[] Words(string text) => FilterRuleParser.Words(text).ToArray();

    [Fact]
    public void A_class_reads_back_in_the_words_it_was_written_in()
    {
        var added = _qos.AddOrChange("database", Words("band 0 weight 3 rate 200M ceil 1G burst 64k dscp af41 police 50M"), change: false);
        Assert.Equal("database band 0 weight 3 rate 200M ceil 1G burst 65536 dscp 34 police 50M", added.ToString());
        var changed = _qos.AddOrChange("database", Words("weight 5"), change: true);
        Assert.Equal(5, changed.Weight);
        Assert.Equal(200_000_000, changed.RateBits);
    }

    [Theory]
    [InlineData("band 9", "band is a whole number from 0 to 7")]
    [InlineData("rate fast", "write a rate in bits per second")]
    [InlineData("rate 500M ceil 100M", "is above its ceil")]
    [InlineData("rate 2G", "more than the line rate")]
    [InlineData("speed 1G", "'speed' is not a class setting")]
    [InlineData("dscp 99", "a DSCP is 0–63")]
    [InlineData("match pcap \"udp\"", "chooses sockets, not packets")]
    [InlineData("match app", "ends too soon")]
    public void A_bad_class_is_refused_with_what_to_write_and_nothing_changes(string words, string message)
    {
        _wire.Engine.DoWork();
        var before = _wire.Engine.Qos;
        var error = Assert.Throws<FormatException>(() => _qos.AddOrChange("bad", Words(words), change: false));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_qos.Show(), v => v.Class.Name == "bad");
        _wire.Engine.DoWork();
        Assert.Same(before, _wire.Engine.Qos);
    }

    [Fact]
    public void The_default_class_cannot_be_deleted_and_unknown_ones_are_named()
    {
        Assert.Contains("cannot be deleted", Assert.Throws<FormatException>(() => _qos.DeleteClass("default")).Message, StringComparison.Ordinal);
        Assert.Contains("no class 'nope'", Assert.Throws<FormatException>(() => _qos.DeleteClass("nope")).Message, StringComparison.Ordinal);
        Assert.Contains("no class 'nope'", Assert.Throws<FormatException>(() => _qos.AddMatch("nope", ["app", "x"])).Message, StringComparison.Ordinal);
        Assert.Contains("exists", Assert.Throws<FormatException>(() => _qos.AddOrChange("default", ["band", "2"], change: false)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_socket_moves_to_a_class_when_a_match_for_it_arrives_and_back_when_it_goes()
    {
        var socket = _wire.Bind(6379, app: "kvdb");
        _qos.AddOrChange("database", ["band", "0"], change: false);
        _wire.Engine.DoWork();
        Assert.Equal("default", ClassOf(socket));
        var match = _qos.AddMatch("database", ["app", "kvdb", "udp", "sport", "6379"]);
        _wire.Engine.DoWork();
        Assert.Equal("database", ClassOf(socket));
        Assert.True(_qos.DeleteMatch(match.Handle));
        _wire.Engine.DoWork();
        Assert.Equal("default", ClassOf(socket));
    }

    [Fact]
    public void Classes_are_kept_in_the_policy_file_and_restored_with_it_and_a_filter_only_restore_keeps_them()
    {
        string file = Path.Combine(Path.GetTempPath(), $"norman-qos-{Guid.NewGuid():N}.rules");
        try
        {
            var policy = new PolicyStore(_wire.Engine, _wire.Names, file, _qos);
            _qos.AddOrChange("database", Words("band 0 rate 100M match app kvdb"), change: false);
            _qos.AddOrChange("bob", Words("band 2 ceil 300M"), change: false);
            _qos.AddMatch("bob", Words("uid 1001"));
            policy.Add(Chain.Ingress, Words("udp dport 80 drop"));
            var lines = File.ReadAllLines(file);
            Assert.Contains("qos class database band 0 weight 1 rate 100M", lines);
            Assert.Contains("qos match database app kvdb", lines);
            Assert.Contains("qos match bob uid 1001", lines);

            using var restoredQos = new QosStore(_wire.Engine, _wire.Names) { LineRateBits = 1_000_000_000 };
            _ = new PolicyStore(_wire.Engine, _wire.Names, file, restoredQos);
            Assert.Equal(_qos.Lines(), restoredQos.Lines());

            policy.Restore(["policy ingress accept", "add ingress udp dport 81 drop"], "test");
            Assert.Contains("qos class bob band 2 weight 1 ceil 300M", File.ReadAllLines(file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void A_bad_qos_line_in_the_policy_file_names_its_line()
    {
        string file = Path.Combine(Path.GetTempPath(), $"norman-qos-{Guid.NewGuid():N}.rules");
        try
        {
            File.WriteAllLines(file, ["policy ingress accept", "qos class db band 0", "qos class web band eleven"]);
            var error = Assert.Throws<FormatException>(() => new PolicyStore(_wire.Engine, _wire.Names, file, _qos));
            Assert.Contains($"{file}:3:", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private string ClassOf(AppSide socket)
    {
        var qos = _wire.Engine.Qos;
        return qos.Classes[qos.Classify(socket.Socket.Pipe, EngineHarness.HostAddress)].Settings.Name;
    }
}
