using System.Net;
using System.Net.Http.Json;

namespace PageAlloc.Tests.Integration;

/// <summary>alloc_contig_range and alloc_contig_pages over HTTP, and the range freed again by free_contig_range.</summary>
public class ContigEndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AContigRange_Is201WithItsLocation_AndFreeContigRangeFreesIt()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();

        var response = await client.PostAsJsonAsync("/zones/Normal/alloc_contig_range", new { pfn = 0x140000, nrPages = 4096 }, Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal($"/zones/Normal/pages/{0x140000}", response.Headers.Location?.OriginalString);
        var page = await client.GetJson($"/zones/Normal/pages/{0x140fff}");
        Assert.Equal(1, (int)page["refcount"]!);
        var freed = await client.PostOk("/zones/Normal/free_contig_range", new { pfn = 0x140000, nrPages = 4096, strategy = "upstream" });
        Assert.Equal(4096, (long)freed["freed"]!);
    }

    [Fact]
    public async Task ARangeWithAPageInUse_Is409Busy_AndChangesNothing()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var block = await client.PostOk("/zones/Normal/alloc_pages", new { order = 3 }, 201);
        var pfn = (long)block["pfn"]!;
        var before = await client.StatsWithoutLocks();

        var response = await client.PostAsJsonAsync("/zones/Normal/alloc_contig_range", new { pfn = pfn & ~1023L, nrPages = 1024 }, Ct);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("\"kind\":\"busy\"", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(before, await client.StatsWithoutLocks());
    }

    [Fact]
    public async Task AllocContigPages_FindsAFreeAlignedRange()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();

        var range = await client.PostOk("/zones/Normal/alloc_contig_pages", new { nrPages = 1 << 18, gfp = "GFP_KERNEL" }, 201);

        Assert.Equal(0, (long)range["pfn"]! % (1 << 18));
        Assert.Equal(1 << 18, (long)range["nrPages"]!);
    }
}
