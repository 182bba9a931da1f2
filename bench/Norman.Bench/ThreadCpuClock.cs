using System.Runtime.InteropServices;

namespace Norman.Bench;

/// <summary>The calling thread's own CPU time (CLOCK_THREAD_CPUTIME_ID): what one thread spent, whatever the others did.</summary>
public static partial class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3;

    public static unsafe long Nanoseconds()
    {
        long* time = stackalloc long[2];
        return ClockGetTime(ClockThreadCpuTimeId, time) == 0 ? time[0] * 1_000_000_000 + time[1] : 0;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static unsafe partial int ClockGetTime(int clock, long* time);
}
