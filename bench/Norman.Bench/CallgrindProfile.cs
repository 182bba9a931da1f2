using System.Globalization;

namespace Norman.Bench;

/// <summary>
/// Instructions per method from one callgrind run, JIT-compiled methods named through the runtime's perf map
/// (DOTNET_PerfMapEnabled=1 writes /tmp/perf-PID.map: start, size and name of each method's code), native ones by
/// callgrind's own symbols. Read from an output file written with --dump-instr=yes --compress-pos=no
/// --compress-strings=no, where each cost line starts with the instruction's address.
/// </summary>
public static class CallgrindProfile
{
    public static Dictionary<string, long> ByMethod(string callgrindFile, string perfMapFile)
    {
        var methods = ReadPerfMap(perfMapFile);
        var starts = methods.Select(m => m.Start).ToArray();
        var totals = new Dictionary<string, long>();
        string function = "?";
        bool callCost = false;
        foreach (var line in File.ReadLines(callgrindFile))
        {
            if (line.StartsWith("fn=", StringComparison.Ordinal))
            {
                function = line[3..];
                continue;
            }
            if (line.StartsWith("calls=", StringComparison.Ordinal))
            {
                callCost = true; // the next cost line is the callee's inclusive cost, counted where it was spent
                continue;
            }
            if (!line.StartsWith("0x", StringComparison.Ordinal))
            {
                continue;
            }
            if (callCost)
            {
                callCost = false;
                continue;
            }
            var parts = line.Split(' ');
            if (parts.Length < 3)
            {
                continue;
            }
            ulong address = Hex(parts[0]);
            long cost = long.Parse(parts[2], CultureInfo.InvariantCulture);
            int at = Array.BinarySearch(starts, address);
            at = at >= 0 ? at : ~at - 1;
            string name = at >= 0 && address < methods[at].Start + methods[at].Size ? methods[at].Name : function;
            totals[name] = totals.GetValueOrDefault(name) + cost;
        }
        return totals;
    }

    private static List<(ulong Start, ulong Size, string Name)> ReadPerfMap(string path)
    {
        var methods = new List<(ulong Start, ulong Size, string Name)>();
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ', 3);
            if (parts.Length == 3)
            {
                methods.Add((Hex(parts[0]), Hex(parts[1]), Shorten(parts[2])));
            }
        }
        methods.Sort((a, b) => a.Start.CompareTo(b.Start));
        return methods;
    }

    private static ulong Hex(string text) =>
        ulong.Parse(text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text.AsSpan(2) : text, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    /// <summary>"instance bool [Norman.Daemon] Norman.Daemon.Dataplane.FlowTable::TryGet(…)[Optimized]" → "FlowTable::TryGet".</summary>
    private static string Shorten(string name)
    {
        int open = name.IndexOf('(');
        string head = open < 0 ? name : name[..open];
        int space = head.LastIndexOf(' ');
        head = head[(space + 1)..];
        int colons = head.IndexOf("::", StringComparison.Ordinal);
        int dot = colons < 0 ? -1 : head.LastIndexOf('.', colons);
        return dot < 0 ? head : head[(dot + 1)..];
    }
}
