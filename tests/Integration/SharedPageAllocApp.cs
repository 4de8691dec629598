namespace PageAlloc.Tests.Integration;

/// <summary>
/// One host for a class's tables of refusals (<c>IClassFixture&lt;SharedPageAllocApp&gt;</c>): each
/// case is a request answered 4xx, and a refusal changes nothing (the tables that can show it read
/// the stats, the machine list or the setting before and after and compare), so the cases share a
/// host without one leaking state into the next, and a hundred hosts (an Orleans silo and a booted
/// machine each) are not started only to refuse one request. A class's tests run one at a time (xUnit's default), so never two on it at
/// once. Anything that changes the machine, or needs settings of its own, gets a fresh
/// <see cref="PageAllocApp"/>.
/// </summary>
public sealed class SharedPageAllocApp : IAsyncLifetime
{
    internal PageAllocApp App { get; } = new();

    public ValueTask InitializeAsync()
    {
        _ = App.Server; // started here, not by the first test (its time is the fixture's)
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => App.DisposeAsync();
}
