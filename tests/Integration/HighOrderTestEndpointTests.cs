namespace PageAlloc.Tests.Integration;

public class HighOrderTestEndpointTests
{
    [Fact]
    public async Task PageAllocHighOrder_AllStrategies_ReportsTimingsAndThePostRunState()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();

        var response = await client.PostOk("/tests/page_alloc_high_order", new { iterations = 200 });

        var results = response["results"]!.AsArray();
        Assert.Equal(["per-page", "chunked", "upstream"], results.Select(r => r!["strategy"]!.GetValue<string>()));
        Assert.All(results, r => Assert.True(r!["nsPerIteration"]!.GetValue<double>() > 0));
        var perPage = results[0]!["state"]!;
        var chunked = results[1]!["state"]!;
        Assert.True(perPage["order0PcpPages"]!.GetValue<long>() > 0);
        Assert.Equal(0, chunked["order0PcpPages"]!.GetValue<long>());
        Assert.True(chunked["pcpBlocksOfOrder"]!.GetValue<long>() >= 1);
        Assert.Equal(0, chunked["allocatedPages"]!.GetValue<long>());
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
    public async Task PageAllocHighOrder_OutOfBounds_Is400(string body)
    {
        await using var app = new PageAllocApp();
        var response = await app.CreateClient().PostAsync("/tests/page_alloc_high_order",
            new StringContent(body, System.Text.Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
    }
}
