namespace Norman.Integration.Tests;

/// <summary>A test class with a fresh in-process daemon per test, disposed after it.</summary>
public abstract class DaemonTest : IAsyncLifetime
{
    protected DaemonFixture Daemon { get; private set; } = null!;

    public Task InitializeAsync()
    {
        Daemon = new DaemonFixture();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Daemon.DisposeAsync();
}
