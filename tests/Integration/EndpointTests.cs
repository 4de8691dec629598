using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

/// <summary>Each endpoint's success path and each of its failure statuses.</summary>
public class EndpointTests(SharedPageAllocApp shared) : IClassFixture<SharedPageAllocApp>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ListZones_ReturnsTheDefaultMachine()
    {
        await using var app = new PageAllocApp();
        var zones = (await app.Api().ListZonesAsync("default", Ct)).ToList();

        Assert.Equal(["DMA", "DMA32", "Normal"], zones.Select(z => z.Name));
        Assert.Equal(1048576, zones[2].StartPfn);
        Assert.Equal(1048576, zones[2].FreePages);
    }

    [Fact]
    public async Task GetZone_MatchesCaseInsensitively_AndShowsWatermarksAndPcp()
    {
        await using var app = new PageAllocApp();
        var zone = await app.Api().GetZoneAsync("default", "nOrMaL", Ct);

        Assert.Equal("Normal", zone.Name);
        Assert.True(zone.Watermarks.Low > zone.Watermarks.Min);
        Assert.Equal(4, zone.Pcp.Count);
        Assert.Equal(63, zone.Pcp[0].Batch);
    }

    [Theory]
    [InlineData("GET", "/zones/Highmem")]
    [InlineData("GET", "/zones/Highmem/stats")]
    [InlineData("GET", "/zones/Highmem/pages/5")]
    [InlineData("POST", "/zones/Highmem/alloc_pages")]
    [InlineData("POST", "/zones/Highmem/split_page")]
    [InlineData("POST", "/zones/Highmem/free_contig_range")]
    [InlineData("POST", "/zones/Highmem/free_pages")]
    [InlineData("POST", "/zones/Highmem/free_pages_bulk")]
    [InlineData("POST", "/zones/Highmem/get_page")]
    [InlineData("POST", "/zones/Highmem/put_page")]
    [InlineData("POST", "/zones/Highmem/hwpoison")]
    [InlineData("POST", "/zones/Highmem/drain_pages")]
    public async Task UnknownZone_Is404Problem(string method, string path)
    {
        var app = shared.App; // a refusal: see SharedPageAllocApp
        // A body each route accepts (unknown members are refused), so only the zone is wrong.
        var json = path.Split('/')[^1] switch
        {
            "alloc_pages" => """{"order":0}""",
            "split_page" or "free_pages" => """{"pfn":1048576,"order":0}""",
            "free_contig_range" => """{"pfn":1048576,"nrPages":1}""",
            "free_pages_bulk" => """{"pfns":[1048576]}""",
            "drain_pages" => "{}",
            _ => """{"pfn":1048576}""",
        };
        var body = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        var response = await app.CreateClient().SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "POST" ? body : null }, Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("unknown-zone", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AllocPages_Returns201WithLocationOfThePage()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var response = await client.PostAsync("/zones/Normal/alloc_pages",
            new StringContent("""{"order":3,"gfp":"GFP_KERNEL|__GFP_COMP"}""", System.Text.Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var block = (await response.Content.ReadFromJsonAsync<AllocPagesResponse>(Ct))!;
        Assert.True(block.Compound);
        Assert.Equal("GFP_KERNEL|__GFP_COMP", block.Gfp);
        var page = (await client.GetFromJsonAsync<PageState>(response.Headers.Location, Ct))!;
        Assert.Equal(PageLocation.Allocated, page.Where);
        Assert.Equal(3, page.BlockOrder);
        Assert.True(page.Compound);
    }

    [Fact]
    public async Task AllocPages_ZoneExhausted_Is507()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        HttpResponseMessage response;
        var count = 0;
        do
        {
            response = await client.PostAsync("/zones/DMA/alloc_pages",
                new StringContent("""{"order":10,"gfp":"GFP_KERNEL|GFP_DMA"}""", System.Text.Encoding.UTF8, "application/json"), Ct);
        }
        while (response.StatusCode == HttpStatusCode.Created && ++count < 10);

        Assert.Equal(HttpStatusCode.InsufficientStorage, response.StatusCode);
        Assert.Contains("out-of-memory", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(1, (await app.Api().GetZoneStatsAsync("default", "DMA", Ct)).Vmstat["alloc_fail"]);
    }

    [Fact]
    public async Task RefcountCalls_GetPutFreeAndPageState_FollowTheKernelsRules()
    {
        await using var app = new PageAllocApp();
        var api = app.Api();
        var pfn = (await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 0 }, Ct)).Pfn;

        Assert.Equal(2, (await api.GetPageAsync("default", "Normal", new PageRequest { Pfn = pfn }, Ct)).Refcount);
        var put = await api.PutPageAsync("default", "Normal", new PageRequest { Pfn = pfn }, Ct);
        Assert.Equal(1, put.Refcount);
        Assert.False(put.Freed);
        Assert.True((await api.FreePagesAsync("default", "Normal", new BlockRequest { Pfn = pfn, Order = 0 }, Ct)).Freed);

        var again = await Assert.ThrowsAsync<PageAllocApiException<ProblemDetails>>(() => api.PutPageAsync("default", "Normal", new PageRequest { Pfn = pfn }, Ct));
        Assert.Equal(ProblemDetailsKind.PageFree, again.Result.Kind);
        Assert.Contains("is free", again.Result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FreePagesBulk_AndHwPoison_LeakThePoisonedPageOnly()
    {
        await using var app = new PageAllocApp();
        var api = app.Api();
        var pfn = (await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 2 }, Ct)).Pfn;
        await api.SplitPageAsync("default", "Normal", new BlockRequest { Pfn = pfn, Order = 2 }, Ct);
        await api.HwPoisonAsync("default", "Normal", new PageRequest { Pfn = pfn + 1 }, Ct);

        var result = await api.FreePagesBulkAsync("default", "Normal", null, new FreePagesBulkRequest { Pfns = [pfn, pfn + 1, pfn + 2, pfn + 3] }, Ct);

        Assert.Equal(3, result.Freed);
        Assert.Equal(1, result.Leaked);
        var page = await api.GetPageStateAsync("default", "Normal", $"{pfn + 1}", Ct);
        Assert.Equal(PageLocation.HwPoisonLeaked, page.Where);
    }

    [Fact]
    public async Task DrainPages_ReturnsPcpPagesToTheBuddy()
    {
        await using var app = new PageAllocApp();
        var api = app.Api();
        var pfn = (await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 0, Cpu = 2 }, Ct)).Pfn;
        await api.FreePagesAsync("default", "Normal", new BlockRequest { Pfn = pfn, Order = 0, Cpu = 2 }, Ct);

        Assert.True((await api.DrainPagesAsync("default", "Normal", new DrainPagesRequest { Cpu = 2 }, Ct)).Drained > 0);
        Assert.Equal(0, (await api.GetZoneStatsAsync("default", "Normal", Ct)).PcpPages);
        var refused = await Assert.ThrowsAsync<PageAllocApiException<ProblemDetails>>(() => api.DrainPagesAsync("default", "Normal", new DrainPagesRequest { Cpu = 9 }, Ct));
        Assert.Equal(400, refused.StatusCode);
    }

    [Fact]
    public async Task Reset_BringsEveryZoneBackToBoot()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var boot = await client.GetStringAsync("/proc/buddyinfo", Ct);
        await client.PostOk("/zones/Normal/alloc_pages", new { order = 5 }, 201);
        Assert.NotEqual(boot, await client.GetStringAsync("/proc/buddyinfo", Ct));

        var totals = await app.Api().ResetAsync("default", Ct);

        Assert.Equal(0, totals.AllocatedPages);
        Assert.Equal(boot, await client.GetStringAsync("/proc/buddyinfo", Ct));
    }

    [Fact]
    public async Task Health_ThePageAtRoot_AndSwagger_AreServed()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        Assert.Equal("Healthy", await client.GetStringAsync("/healthz", Ct));
        var root = await client.GetAsync("/", Ct);
        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("text/html", root.Content.Headers.ContentType?.MediaType);
        Assert.Contains("href=\"/swagger\"", await root.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/app.js", Ct)).StatusCode);
        var ui = await client.GetAsync("/swagger/index.html", Ct);
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);
    }
}
