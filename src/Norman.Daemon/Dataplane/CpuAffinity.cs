using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane;

/// <summary>Pins the calling thread to one CPU, as DPDK pins an lcore: a busy-polling loop that migrates loses its caches.</summary>
public static class CpuAffinity
{
    /// <summary>Pins the calling thread; false (and the thread unpinned) when the CPU does not exist or is not allowed.</summary>
    public static unsafe bool PinCurrentThread(int cpu)
    {
        if (cpu < 0 || cpu >= 1024)
        {
            return false;
        }
        var mask = stackalloc ulong[16];
        new Span<ulong>(mask, 16).Clear();
        mask[cpu / 64] = 1UL << (cpu % 64);
        return Libc.SchedSetAffinity(0, 16 * sizeof(ulong), mask) == 0;
    }
}
