using System.Text.Json.Nodes;

namespace PageAlloc.Tests.Integration;

/// <summary>The seed's loop over HTTP: alloc order 9, split, free_contig_range, then the stats.</summary>
public class SeedScenarioTests
{
    [Theory]
    [InlineData("per-page", 512, 0)]
    [InlineData("chunked", 1, 9)]
    [InlineData("upstream", 1, 9)]
    public async Task SeedScenario_EachStrategy_FreesTheBlockAsItsChunks(string strategy, int chunkCount, int chunkOrder)
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();

        var block = await client.PostOk("/zones/Normal/alloc_pages", new { order = 9, gfp = "GFP_KERNEL", cpu = 0 }, 201);
        var pfn = block["pfn"]!.GetValue<long>();
        await client.PostOk("/zones/Normal/split_page", new { pfn, order = 9 });
        var freed = await client.PostOk("/zones/Normal/free_contig_range?listChunks=true", new { pfn, nrPages = 512, strategy, cpu = 0 });

        Assert.Equal(512, freed["freed"]!.GetValue<long>());
        Assert.Equal(strategy, freed["strategy"]!.GetValue<string>());
        var chunks = freed["chunks"]!.AsArray();
        Assert.Equal(chunkCount, chunks.Count);
        Assert.All(chunks, c => Assert.Equal(chunkOrder, c!["order"]!.GetValue<int>()));
        Assert.Equal(chunkCount, freed["chunksByOrder"]![chunkOrder]!.GetValue<long>());

        var stats = await client.GetJson("/zones/Normal/stats");
        Assert.Equal(0, stats["allocatedPages"]!.GetValue<long>());
        Assert.Equal(512, stats["vmstat"]!["pgalloc"]!.GetValue<long>());
        Assert.Equal(512, stats["vmstat"]!["pgfree"]!.GetValue<long>() - 1048576); // boot frees count too

        // The last page freed: an order-0 page on the pcp (per-page), or inside an order-9 block.
        var last = await client.GetJson($"/zones/Normal/pages/{pfn + 511}");
        Assert.Equal("pcp", last["where"]!.GetValue<string>());
        Assert.Equal(chunkOrder, last["blockOrder"]!.GetValue<int>());

        var buddyinfo = await client.GetStringAsync("/proc/buddyinfo", TestContext.Current.CancellationToken);
        Assert.Contains("zone   Normal", buddyinfo, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SeedScenario_RepeatedChunked_KeepsOrder9BlocksAvailable_PerPageLeavesOrder0Pages()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        foreach (var strategy in new[] { "chunked", "per-page" })
        {
            long pfn = 0;
            for (var i = 0; i < 5; i++)
            {
                var block = await client.PostOk("/zones/Normal/alloc_pages", new { order = 9, cpu = 1 }, 201);
                pfn = block["pfn"]!.GetValue<long>();
                await client.PostOk("/zones/Normal/split_page", new { pfn, order = 9 });
                await client.PostOk("/zones/Normal/free_contig_range", new { pfn, nrPages = 512, strategy, cpu = 1 });
            }
            var page = await client.GetJson($"/zones/Normal/pages/{pfn + 511}");
            Assert.Equal(strategy == "chunked" ? 9 : 0, page["blockOrder"]!.GetValue<int>());
            Assert.Equal(0, (await client.GetJson("/zones/Normal/stats"))["allocatedPages"]!.GetValue<long>());
            await client.PostOk("/reset", new { });
        }
    }
}
