using System.Globalization;

namespace Norman.Daemon.Control;

/// <summary>
/// Keeps the daemon's last file descriptors for its administrators. Every control connection, socket (memfd and
/// eventfd) and capture tap of an ordinary user holds descriptors in the daemon; together, ordinary users may hold
/// all but <see cref="Reserve"/> of what the daemon may open (RLIMIT_NOFILE, less what it held at start), so that
/// however many users exhaust their own limits, root can still connect, list and close. Thread-safe; cold path only.
/// </summary>
public sealed class DescriptorReserve
{
    private readonly long _ordinaryLimit;
    private long _heldByOrdinary;

    public DescriptorReserve(long openLimit, long openAtStart)
    {
        Reserve = Math.Max(256, openLimit / 8);
        _ordinaryLimit = Math.Max(0, openLimit - openAtStart - Reserve);
    }

    /// <summary>Descriptors only administrators' requests may take.</summary>
    public long Reserve { get; }

    /// <summary>What ordinary users hold now.</summary>
    public long HeldByOrdinaryUsers => Interlocked.Read(ref _heldByOrdinary);

    /// <summary>For this process: its RLIMIT_NOFILE and the descriptors it holds now.</summary>
    public static DescriptorReserve ForThisProcess() => new(OpenLimit(), Directory.GetFileSystemEntries("/proc/self/fd").Length);

    /// <summary>Takes <paramref name="count"/> descriptors for an ordinary user's request; false when that would eat into the reserve.</summary>
    public bool TryTake(int count)
    {
        while (true)
        {
            long held = Interlocked.Read(ref _heldByOrdinary);
            if (held + count > _ordinaryLimit)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _heldByOrdinary, held + count, held) == held)
            {
                return true;
            }
        }
    }

    public void Return(int count) => Interlocked.Add(ref _heldByOrdinary, -count);

    /// <summary>What the refusal says.</summary>
    public string Refusal(int uid) =>
        $"the daemon is out of file descriptors for ordinary users (they hold {HeldByOrdinaryUsers}; it keeps its last {Reserve} for administrators), " +
        $"so uid {uid} cannot open more now. Close sockets or captures, or raise normand's open-file limit (LimitNOFILE=, ulimit -n).";

    /// <summary>The soft RLIMIT_NOFILE, as /proc/self/limits shows it ("Max open files").</summary>
    private static long OpenLimit()
    {
        foreach (var line in File.ReadLines("/proc/self/limits"))
        {
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                var words = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (words.Length > 0 && long.TryParse(words[0], NumberStyles.None, CultureInfo.InvariantCulture, out long soft))
                {
                    return soft;
                }
            }
        }
        return 1024;
    }
}
