using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// The seed's loop over HTTP (alloc order 9, split_page, free_contig_range, then the stats), through
/// PageAlloc.Client, the client NSwag generates from the committed document: what a .NET user of the
/// package writes. Every strategy goes out in the document's spelling and comes back typed.
/// </summary>
public class SeedScenarioTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const int SeedOrder = 9; // HPAGE_PMD_ORDER, as the seed's test

    [Theory]
    [InlineData(FreeStrategy.PerPage, 512, 0)]
    [InlineData(FreeStrategy.Chunked, 1, 9)]
    [InlineData(FreeStrategy.Upstream, 1, 9)]
    public async Task SeedScenario_EachStrategy_FreesTheBlockAsItsChunks(FreeStrategy strategy, int chunkCount, int chunkOrder)
    {
        await using var app = new PageAllocApp();
        var api = app.Api();

        var block = await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = SeedOrder, Gfp = "GFP_KERNEL", Cpu = 0 }, Ct);
        var split = await api.SplitPageAsync("default", "Normal", new BlockRequest { Pfn = block.Pfn, Order = SeedOrder }, Ct);
        var freed = await api.FreeContigRangeAsync("default", "Normal", listChunks: true,
            new FreeContigRangeRequest { Pfn = block.Pfn, NrPages = split.Pages, Strategy = strategy, Cpu = 0 }, Ct);

        Assert.Equal(512, split.Pages);
        Assert.Equal(512, freed.Freed);
        Assert.Equal(strategy, freed.Strategy);
        Assert.Equal(chunkCount, freed.Chunks!.Count);
        Assert.All(freed.Chunks, c => Assert.Equal(chunkOrder, c.Order));
        Assert.Equal(chunkCount, freed.ChunksByOrder[chunkOrder]);

        var stats = await api.GetZoneStatsAsync("default", "Normal", Ct);
        Assert.Equal(0, stats.AllocatedPages);
        Assert.Equal(512, stats.Vmstat["pgalloc"]);
        Assert.Equal(512, stats.Vmstat["pgfree"] - 1048576); // boot frees count too

        // The last page freed: an order-0 page on the pcp (per-page), or inside an order-9 block.
        var last = await api.GetPageStateAsync("default", "Normal", (block.Pfn + 511).ToString(System.Globalization.CultureInfo.InvariantCulture), Ct);
        Assert.Equal(PageLocation.Pcp, last.Where);
        Assert.Equal(chunkOrder, last.BlockOrder);
    }

    [Fact]
    public async Task SeedScenario_RepeatedChunked_KeepsOrder9BlocksAvailable_PerPageLeavesOrder0Pages()
    {
        await using var app = new PageAllocApp();
        var api = app.Api();
        foreach (var strategy in new[] { FreeStrategy.Chunked, FreeStrategy.PerPage })
        {
            long pfn = 0;
            for (var i = 0; i < 5; i++)
            {
                pfn = (await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = SeedOrder, Cpu = 1 }, Ct)).Pfn;
                await api.SplitPageAsync("default", "Normal", new BlockRequest { Pfn = pfn, Order = SeedOrder }, Ct);
                await api.FreeContigRangeAsync("default", "Normal", null, new FreeContigRangeRequest { Pfn = pfn, NrPages = 512, Strategy = strategy, Cpu = 1 }, Ct);
            }
            var page = await api.GetPageStateAsync("default", "Normal", $"0x{pfn + 511:x}", Ct);
            Assert.Equal(strategy == FreeStrategy.Chunked ? 9 : 0, page.BlockOrder);
            Assert.Equal(0, (await api.GetZoneStatsAsync("default", "Normal", Ct)).AllocatedPages);
            await api.ResetAsync("default", Ct);
        }
    }

    [Fact]
    public async Task ARefusal_IsAnExceptionCarryingTheTypedProblem()
    {
        await using var app = new PageAllocApp();
        var api = app.Api();
        var block = await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 0, Cpu = 0 }, Ct);
        await api.FreePagesAsync("default", "Normal", new BlockRequest { Pfn = block.Pfn, Order = 0, Cpu = 0 }, Ct);

        var refused = await Assert.ThrowsAsync<PageAllocApiException<ProblemDetails>>(
            () => api.FreePagesAsync("default", "Normal", new BlockRequest { Pfn = block.Pfn, Order = 0, Cpu = 0 }, Ct));

        Assert.Equal(409, refused.StatusCode);
        Assert.Equal(ProblemDetailsKind.PageFree, refused.Result.Kind);
        Assert.Contains("is free", refused.Result.Detail, StringComparison.Ordinal);
    }
}
