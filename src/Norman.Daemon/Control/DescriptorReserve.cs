using Norman.Core.Shm;
using System.Globalization;

namespace Norman.Daemon.Control;

/// <summary>
/// The daemon's file descriptors, shared out. Every control connection, socket (memfd and eventfd) and capture tap
/// holds descriptors in the daemon. Two amounts are kept back: <see cref="RuntimeFloor"/> that no request may take,
/// anyone's, for the daemon's own needs (a .NET process at its limit cannot load code, open standard error or read
/// /proc, and aborts); and, above it, <see cref="Reserve"/> that only administrators' requests may take, so that
/// however many users exhaust their own limits, root can still connect, list and close. Thread-safe; cold path only.
/// </summary>
public sealed class DescriptorReserve
{
    /// <summary>Descriptors kept for the daemon itself, whoever asks.</summary>
    public const long RuntimeFloor = 64;

    private readonly long _ordinaryLimit;
    private readonly long _limit;
    private long _heldByOrdinary;
    private long _held;

    public DescriptorReserve(long openLimit, long openAtStart)
    {
        Reserve = Math.Max(256, openLimit / 8);
        _limit = Math.Max(0, openLimit - openAtStart - RuntimeFloor);
        _ordinaryLimit = Math.Max(0, _limit - Reserve);
    }

    /// <summary>Descriptors only administrators' requests may take.</summary>
    public long Reserve { get; }

    /// <summary>What ordinary users hold now.</summary>
    public long HeldByOrdinaryUsers => Interlocked.Read(ref _heldByOrdinary);

    /// <summary>
    /// For this process: its RLIMIT_NOFILE (first raised to the hard limit, as a server does: the soft limit's 1,024
    /// is for select(2)'s sake, which the daemon never calls) and the descriptors it holds now.
    /// </summary>
    public static DescriptorReserve ForThisProcess()
    {
        RaiseOpenLimit();
        return new(OpenLimit(), Directory.GetFileSystemEntries("/proc/self/fd").Length);
    }

    /// <summary>
    /// Takes <paramref name="count"/> descriptors for a request; false when that would eat into what is kept: the
    /// administrators' reserve for an ordinary user, the runtime's floor for anyone.
    /// </summary>
    public bool TryTake(int count, bool administrator)
    {
        while (true)
        {
            long held = Interlocked.Read(ref _held);
            long ordinary = Interlocked.Read(ref _heldByOrdinary);
            if (held + count > _limit || !administrator && ordinary + count > _ordinaryLimit)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _held, held + count, held) != held)
            {
                continue;
            }
            if (administrator)
            {
                return true;
            }
            if (Interlocked.CompareExchange(ref _heldByOrdinary, ordinary + count, ordinary) == ordinary)
            {
                return true;
            }
            Interlocked.Add(ref _held, -count); // another ordinary request moved first: try again from the start
        }
    }

    public void Return(int count, bool administrator)
    {
        Interlocked.Add(ref _held, -count);
        if (!administrator)
        {
            Interlocked.Add(ref _heldByOrdinary, -count);
        }
    }

    /// <summary>What the refusal says.</summary>
    public string Refusal(int uid, bool administrator) => administrator
        ? $"the daemon is out of file descriptors (requests hold {Interlocked.Read(ref _held)}; it keeps its last {RuntimeFloor} for itself), " +
          "so nothing more can be opened now. Close sockets, captures or connections, or raise normand's open-file limit (LimitNOFILE=, ulimit -n)."
        : $"the daemon is out of file descriptors for ordinary users (they hold {HeldByOrdinaryUsers}; it keeps its last {Reserve} for administrators), " +
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

    private static unsafe void RaiseOpenLimit()
    {
        const int RlimitNofile = 7;
        var limit = stackalloc ulong[2]; // struct rlimit: soft, hard
        if (Libc.GetRlimit(RlimitNofile, limit) == 0 && limit[0] < limit[1])
        {
            limit[0] = Math.Min(limit[1], 1UL << 20); // a hard limit of "infinity" would make every table that size
            Libc.SetRlimit(RlimitNofile, limit);
        }
    }
}
