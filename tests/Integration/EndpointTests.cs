using System.Net;
using System.Text.Json.Nodes;

namespace PageAlloc.Tests.Integration;

/// <summary>Each endpoint's success path and each of its failure statuses.</summary>
public class EndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ListZones_ReturnsTheDefaultMachine()
    {
        await using var app = new PageAllocApp();
        var zones = (await app.CreateClient().GetJson("/zones")).AsArray();

        Assert.Equal(["DMA", "DMA32", "Normal"], zones.Select(z => z!["name"]!.GetValue<string>()));
        Assert.Equal(1048576, zones[2]!["startPfn"]!.GetValue<long>());
        Assert.Equal(1048576, zones[2]!["freePages"]!.GetValue<long>());
    }

    [Fact]
    public async Task GetZone_MatchesCaseInsensitively_AndShowsWatermarksAndPcp()
    {
        await using var app = new PageAllocApp();
        var zone = await app.CreateClient().GetJson("/zones/nOrMaL");

        Assert.Equal("Normal", zone["name"]!.GetValue<string>());
        Assert.True(zone["watermarks"]!["low"]!.GetValue<long>() > zone["watermarks"]!["min"]!.GetValue<long>());
        Assert.Equal(4, zone["pcp"]!.AsArray().Count);
        Assert.Equal(63, zone["pcp"]![0]!["batch"]!.GetValue<int>());
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
        await using var app = new PageAllocApp();
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
        var block = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
        Assert.True(block["compound"]!.GetValue<bool>());
        Assert.Equal("GFP_KERNEL|__GFP_COMP", block["gfp"]!.GetValue<string>());
        var page = await client.GetJson(response.Headers.Location!.ToString());
        Assert.Equal("allocated", page["where"]!.GetValue<string>());
        Assert.Equal(3, page["blockOrder"]!.GetValue<int>());
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
        var stats = await client.GetJson("/zones/DMA/stats");
        Assert.Equal(1, stats["vmstat"]!["alloc_fail"]!.GetValue<long>());
    }

    [Fact]
    public async Task RefcountCalls_GetPutFreeAndPageState_FollowTheKernelsRules()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var pfn = (await client.PostOk("/zones/Normal/alloc_pages", new { order = 0 }, 201))["pfn"]!.GetValue<long>();

        Assert.Equal(2, (await client.PostOk("/zones/Normal/get_page", new { pfn }))["refcount"]!.GetValue<int>());
        var put = await client.PostOk("/zones/Normal/put_page", new { pfn });
        Assert.Equal(1, put["refcount"]!.GetValue<int>());
        Assert.False(put["freed"]!.GetValue<bool>());
        var free = await client.PostOk("/zones/Normal/free_pages", new { pfn, order = 0 });
        Assert.True(free["freed"]!.GetValue<bool>());

        var again = await client.PostOk("/zones/Normal/put_page", new { pfn }, 409);
        Assert.Equal("page-free", again["kind"]!.GetValue<string>());
        Assert.Contains("is free", again["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FreePagesBulk_AndHwPoison_LeakThePoisonedPageOnly()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var pfn = (await client.PostOk("/zones/Normal/alloc_pages", new { order = 2 }, 201))["pfn"]!.GetValue<long>();
        await client.PostOk("/zones/Normal/split_page", new { pfn, order = 2 });
        await client.PostOk("/zones/Normal/hwpoison", new { pfn = pfn + 1 });

        var result = await client.PostOk("/zones/Normal/free_pages_bulk", new { pfns = new[] { pfn, pfn + 1, pfn + 2, pfn + 3 } });

        Assert.Equal(3, result["freed"]!.GetValue<long>());
        Assert.Equal(1, result["leaked"]!.GetValue<long>());
        var page = await client.GetJson($"/zones/Normal/pages/{pfn + 1}");
        Assert.Equal("hw-poison-leaked", page["where"]!.GetValue<string>());
    }

    [Fact]
    public async Task DrainPages_ReturnsPcpPagesToTheBuddy()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var pfn = (await client.PostOk("/zones/Normal/alloc_pages", new { order = 0, cpu = 2 }, 201))["pfn"]!.GetValue<long>();
        await client.PostOk("/zones/Normal/free_pages", new { pfn, order = 0, cpu = 2 });

        var drained = await client.PostOk("/zones/Normal/drain_pages", new { cpu = 2 });
        Assert.True(drained["drained"]!.GetValue<long>() > 0);
        Assert.Equal(0, (await client.GetJson("/zones/Normal/stats"))["pcpPages"]!.GetValue<long>());
        await client.PostOk("/zones/Normal/drain_pages", new { cpu = 9 }, 400);
    }

    [Fact]
    public async Task Reset_BringsEveryZoneBackToBoot()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var boot = await client.GetStringAsync("/proc/buddyinfo", Ct);
        await client.PostOk("/zones/Normal/alloc_pages", new { order = 5 }, 201);
        Assert.NotEqual(boot, await client.GetStringAsync("/proc/buddyinfo", Ct));

        var totals = await client.PostOk("/reset", new { });

        Assert.Equal(0, totals["allocatedPages"]!.GetValue<long>());
        Assert.Equal(boot, await client.GetStringAsync("/proc/buddyinfo", Ct));
    }

    [Fact]
    public async Task Health_Root_AndSwagger_AreServed()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        Assert.Equal("Healthy", await client.GetStringAsync("/healthz", Ct));
        var root = await client.GetAsync("/", Ct);
        Assert.Equal(HttpStatusCode.Redirect, root.StatusCode);
        Assert.Equal("/swagger", root.Headers.Location!.ToString());
        var ui = await client.GetAsync("/swagger/index.html", Ct);
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);
    }
}
