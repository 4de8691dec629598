using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// The seed's flow through PageAlloc.Client, the client NSwag generates from the committed document:
/// what a .NET user of the package would write. Every strategy goes out in the document's spelling
/// and comes back typed; a refusal arrives as an exception carrying the typed problem.
/// </summary>
public class GeneratedClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const int SeedOrder = 9; // HPAGE_PMD_ORDER, as the seed's test

    [Theory]
    [InlineData(FreeStrategy.PerPage, 512L)]
    [InlineData(FreeStrategy.Chunked, 1L)]
    [InlineData(FreeStrategy.Upstream, 1L)]
    public async Task SeedFlow_AllocSplitFreeContigRange_WithEveryStrategy(FreeStrategy strategy, long chunksFreed)
    {
        await using var app = new PageAllocApp();
        var client = new PageAllocClient(app.CreateClient());
        var boot = await client.GetZoneStatsAsync("Normal", Ct);

        var block = await client.AllocPagesAsync("Normal", new AllocPagesRequest { Order = SeedOrder, Cpu = 0 }, Ct);
        var split = await client.SplitPageAsync("Normal", new BlockRequest { Pfn = block.Pfn, Order = SeedOrder }, Ct);
        var freed = await client.FreeContigRangeAsync("Normal", listChunks: true,
            new FreeContigRangeRequest { Pfn = block.Pfn, NrPages = split.Pages, Strategy = strategy, Cpu = 0 }, Ct);

        Assert.Equal(SeedOrder, block.Order);
        Assert.Equal("Normal", block.Zone);
        Assert.Equal(512, split.Pages);
        Assert.Equal(strategy, freed.Strategy);
        Assert.Equal(512, freed.Freed);
        Assert.Equal(chunksFreed, freed.ChunksByOrder.Sum());
        Assert.Equal(chunksFreed, freed.Chunks!.Count);
        await client.DrainPagesAsync("Normal", null, Ct);
        var after = await client.GetZoneStatsAsync("Normal", Ct);
        Assert.Equal(boot.FreePages, after.FreePages);
        Assert.Equal(boot.Buddyinfo, after.Buddyinfo);
    }

    [Fact]
    public async Task ARefusal_IsAnExceptionWithTheTypedProblem()
    {
        await using var app = new PageAllocApp();
        var client = new PageAllocClient(app.CreateClient());
        var block = await client.AllocPagesAsync("Normal", new AllocPagesRequest { Order = 0, Cpu = 0 }, Ct);
        await client.FreePagesAsync("Normal", new BlockRequest { Pfn = block.Pfn, Order = 0, Cpu = 0 }, Ct);

        var refused = await Assert.ThrowsAsync<PageAllocApiException<ProblemDetails>>(
            () => client.FreePagesAsync("Normal", new BlockRequest { Pfn = block.Pfn, Order = 0, Cpu = 0 }, Ct));

        Assert.Equal(409, refused.StatusCode);
        Assert.Equal(ProblemDetailsKind.PageFree, refused.Result.Kind);
        Assert.Contains("is free", refused.Result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PageState_ComesBackTyped()
    {
        await using var app = new PageAllocApp();
        var client = new PageAllocClient(app.CreateClient());
        var block = await client.AllocPagesAsync("Normal", new AllocPagesRequest { Order = 3, Gfp = "GFP_KERNEL|__GFP_COMP" }, Ct);

        var tail = await client.GetPageStateAsync("Normal", $"0x{block.Pfn + 1:x}", Ct);

        Assert.Equal(PageLocation.Allocated, tail.Where);
        Assert.Equal(block.Pfn, tail.BlockPfn);
        Assert.Equal(3, tail.BlockOrder);
        Assert.True(tail.Compound);
    }
}
