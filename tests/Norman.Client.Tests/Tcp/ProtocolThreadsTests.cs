using Norman.Client.Tcp;

namespace Norman.Client.Tests.Tcp;

/// <summary>The parked threads TCP endpoints' loops run on: reused, named for their endpoint, and ended when idle.</summary>
[Collection(nameof(ProtocolThreadsTests))] // they read the process's one pool: not beside each other
public sealed class ProtocolThreadsTests
{
    [Fact]
    public void A_loop_that_ended_leaves_its_thread_parked_for_the_next_which_runs_on_it_under_its_own_name()
    {
        int first = 0, second = 0;
        string? name = null;
        var one = ProtocolThreads.Start(() => first = Environment.CurrentManagedThreadId, "norman tcp :1");
        one.Join();
        Assert.True(WaitFor(() => ProtocolThreads.ParkedCount > 0), "the thread did not park after its loop");
        var two = ProtocolThreads.Start(() => (second, name) = (Environment.CurrentManagedThreadId, Thread.CurrentThread.Name), "norman tcp :2");
        two.Join();
        Assert.NotEqual(0, first);
        Assert.Equal(first, second);
        Assert.Equal("norman tcp :2", name);
    }

    [Fact]
    public void A_loop_knows_its_own_thread_and_join_returns_after_its_end()
    {
        bool insideIsCurrent = false, ended = false;
        ProtocolThreads.Loop? loop = null;
        using var started = new ManualResetEventSlim();
        loop = ProtocolThreads.Start(() =>
        {
            started.Wait();
            insideIsCurrent = loop!.IsCurrentThread;
            Volatile.Write(ref ended, true);
        }, "norman tcp :3");
        Assert.False(loop.IsCurrentThread);
        started.Set();
        loop.Join();
        Assert.True(Volatile.Read(ref ended));
        Assert.True(insideIsCurrent);
    }

    [Fact]
    public void A_parked_thread_ends_after_its_idle_lifetime()
    {
        var lifetime = ProtocolThreads.IdleLifetime;
        ProtocolThreads.IdleLifetime = TimeSpan.FromMilliseconds(20);
        try
        {
            ProtocolThreads.Start(() => { }, "norman tcp :4").Join();
            Assert.True(WaitFor(() => ProtocolThreads.ParkedCount == 0), $"{ProtocolThreads.ParkedCount} thread(s) still parked");
        }
        finally
        {
            ProtocolThreads.IdleLifetime = lifetime;
        }
    }

    /// <summary>Polls a condition for at most ten seconds.</summary>
    private static bool WaitFor(Func<bool> condition)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                return false;
            }
            Thread.Sleep(1);
        }
        return true;
    }
}
