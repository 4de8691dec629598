using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

public class HighOrderTestEndpointTests(SharedPageAllocApp shared) : IClassFixture<SharedPageAllocApp>
{
    [Fact]
    public async Task PageAllocHighOrder_AllStrategies_ReportsTimingsAndThePostRunState()
    {
        await using var app = new PageAllocApp();

        var response = await app.Api().PageAllocHighOrderTestAsync("default", new HighOrderTestRequest { Iterations = 200 }, TestContext.Current.CancellationToken);

        var results = response.Results;
        Assert.Equal([FreeStrategy.PerPage, FreeStrategy.Chunked, FreeStrategy.Upstream], results.Select(r => r.Strategy));
        Assert.All(results, r => Assert.True(r.NsPerIteration > 0));
        var (perPage, chunked) = (results[0].State, results[1].State);
        Assert.True(perPage.Order0PcpPages > 0);
        Assert.Equal(0, chunked.Order0PcpPages);
        Assert.True(chunked.PcpBlocksOfOrder >= 1);
        Assert.Equal(0, chunked.AllocatedPages);
    }

    [Fact]
    public async Task PageAllocHighOrder_WarmsEachStrategyUp_ThenReportsTheMedianOfItsRounds()
    {
        await using var app = new PageAllocApp();

        var response = await app.Api().PageAllocHighOrderTestAsync("default", new HighOrderTestRequest { Iterations = 100, Rounds = 3 }, TestContext.Current.CancellationToken);

        Assert.All(response.Results, r =>
        {
            Assert.Equal(3, r.NsPerIterationByRound.Count);
            Assert.Equal(r.NsPerIterationByRound.Order().ElementAt(1), r.NsPerIteration); // the median round stands for the strategy
            Assert.True(r.WarmUpIterations >= 48, $"{r.Strategy}: {r.WarmUpIterations} untimed iterations before the rounds");
        });
        var byDefault = await app.Api().PageAllocHighOrderTestAsync("default", new HighOrderTestRequest { Iterations = 10, Strategy = FreeStrategy.Chunked }, TestContext.Current.CancellationToken);
        Assert.Equal(5, Assert.Single(byDefault.Results).NsPerIterationByRound.Count);
    }

    [Fact]
    public async Task PageAllocHighOrder_LeavesTheServedZonesUntouched()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var before = await client.StatsWithoutLocks();

        await client.PostOk("/tests/page_alloc_high_order", new { iterations = 100, order = 4, strategy = "chunked", zone = "DMA32" });

        Assert.Equal(before, await client.StatsWithoutLocks());
    }

    [Theory]
    [InlineData("""{"iterations":100001}""")]
    [InlineData("""{"iterations":0}""")]
    [InlineData("""{"iterations":10,"order":0}""")]
    [InlineData("""{"iterations":10,"zone":"Highmem"}""")]
    [InlineData("""{"order":9}""")]
    [InlineData("""{"iterations":10,"rounds":0}""")]
    [InlineData("""{"iterations":10,"rounds":10}""")]
    public async Task PageAllocHighOrder_OutOfBounds_Is400(string body)
    {
        var app = shared.App; // a refusal: see SharedPageAllocApp
        var response = await app.CreateClient().PostAsync("/tests/page_alloc_high_order",
            new StringContent(body, System.Text.Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
    }
}
