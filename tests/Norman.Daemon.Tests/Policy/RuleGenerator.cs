namespace Norman.Daemon.Tests.Policy;

/// <summary>Random rules in the filter's words: every match and action, values of every shape, names the file must quote.</summary>
internal static class RuleGenerator
{
    private static readonly string[] Names = ["kvdb", "my app", "", "x\"y", "back\\slash", "{brace}", "hash#tag", "tab\there", "ünïcode", "@at", "a,b"];
    private static readonly string[] Flags = ["fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"];
    private static readonly string[] States = ["new", "established", "related", "invalid", "untracked"];
    private static readonly string[] IcmpTypes = ["echo-request", "echo-reply", "destination-unreachable", "address-mask-request", "13", "42"];

    public static List<string> Words(Random random)
    {
        var words = new List<string>();
        string Pick(IReadOnlyList<string> from) => from[random.Next(from.Count)];
        bool Maybe(int inTen = 3) => random.Next(10) < inTen;
        string Not() => Maybe(2) ? "!= " : "";
        string Address() => $"{random.Next(1, 224)}.{random.Next(256)}.{random.Next(256)}.{random.Next(256)}" + (Maybe() ? $"/{random.Next(0, 33)}" : "");
        string Port() => Maybe() ? $"{random.Next(0, 30000)}-{random.Next(30000, 65536)}" : random.Next(0, 65536).ToString();
        string Set(Func<string> element) => Maybe() ? "{ " + string.Join(", ", Enumerable.Range(0, random.Next(1, 4)).Select(_ => element())) + " }" : element();
        void Add(string text) => words.AddRange(text.Split(' ', StringSplitOptions.RemoveEmptyEntries));

        if (Maybe())
        {
            Add($"ip saddr {Not()}{(Maybe(1) ? "@blocked" : Set(Address))}");
        }
        if (Maybe())
        {
            Add($"ip daddr {Not()}{Set(Address)}");
        }
        if (Maybe(2))
        {
            Add($"ip length {Not()}{Set(() => $"{random.Next(20, 100)}-{random.Next(100, 1500)}")}");
        }
        if (Maybe(2))
        {
            Add($"ip dscp {Not()}{Set(() => Pick(["ef", "be", "cs1", "af41", "7"]))}");
        }
        int protocol = random.Next(6);
        switch (protocol)
        {
            case 0 or 1:
                Add(protocol == 0 ? "udp" : "tcp");
                if (Maybe(5))
                {
                    Add($"sport {Not()}{Set(Port)}");
                }
                if (Maybe(5))
                {
                    Add($"dport {Not()}{(Maybe(1) ? "@web" : Set(Port))}");
                }
                if (protocol == 1 && Maybe(5))
                {
                    string flags = string.Join(',', Flags.Where(_ => Maybe(3)).DefaultIfEmpty("syn"));
                    Add(random.Next(4) switch
                    {
                        0 => $"flags {Not()}{flags}",
                        1 => $"flags == {flags}",
                        2 => $"flags {flags} / {flags},ack",
                        _ => $"flags & ({flags.Replace(',', '|')}|ack) != {flags.Replace(',', '|')}",
                    });
                }
                break;
            case 2:
                Add("icmp");
                if (Maybe(5))
                {
                    Add($"type {Not()}{Set(() => Pick(IcmpTypes))}");
                }
                break;
            case 3:
                Add($"meta l4proto {Not()}{Set(() => Pick(["tcp", "udp", "icmp", "47"]))}");
                break;
        }
        foreach (var owner in new[] { "app", "cgroup" })
        {
            if (Maybe(2))
            {
                words.Add(owner);
                words.Add(Pick(Names));
            }
        }
        if (Maybe(1))
        {
            words.Add("exe");
            words.Add("/opt/" + Pick(Names));
        }
        foreach (var id in new[] { "uid", "gid", "pid" })
        {
            if (Maybe(1))
            {
                Add($"{id} {random.Next(0, 70000)}");
            }
        }
        if (Maybe(2))
        {
            Add($"ct state {Not()}{string.Join(',', States.Where(_ => Maybe(4)).DefaultIfEmpty("new"))}");
        }
        if (Maybe(2))
        {
            string unit = Pick(["second", "minute", "hour", "day"]);
            Add(Maybe(5)
                ? $"limit rate {(Maybe() ? "over " : "")}{random.Next(1, 10000)}/{unit}" + (Maybe() ? $" burst {random.Next(1, 100)} packets" : "")
                : $"limit rate {(Maybe() ? "over " : "")}{random.Next(1, 10000)} {Pick(["bytes", "kbytes", "mbytes"])}/{unit}" + (Maybe() ? $" burst {random.Next(0, 100)} bytes" : ""));
        }
        if (Maybe(1))
        {
            words.Add("pcap");
            words.Add(Pick(["udp", "udp and greater 100", "not tcp port 22"]));
        }
        if (Maybe(1))
        {
            words.Add("counter");
        }
        switch (random.Next(6))
        {
            case 0:
                words.Add("accept");
                break;
            case 1:
                words.Add("drop");
                break;
            case 2:
                words.Add("count");
                break;
            case 3:
                words.Add("log");
                if (Maybe(5))
                {
                    words.Add("prefix");
                    words.Add(Pick(Names));
                }
                break;
            default:
                words.Add("reject");
                if (Maybe(5))
                {
                    Add(protocol == 1 && Maybe(5) ? "with tcp reset" : $"with icmp type {Pick(["host-unreachable", "admin-prohibited", "port-unreachable"])}");
                }
                break;
        }
        return words;
    }
}
