using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// Memory pressure over HTTP: a machine booted with page cache serves clients through reclaim,
/// POST /page_cache and /drop_caches, the refusals of a client's call on a system page, and what
/// /proc, /stats, /events and /metrics show of it.
/// </summary>
public class ReclaimEndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // 256 MiB of Normal, min/low/high 1024/1280/1536 pages, that has read twice its memory.
    private static object Busy(string name, long pageCache = 131072) => new
    {
        name,
        config = new
        {
            cpus = 2,
            minFreeKbytes = 4096,
            nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 1048576, pages = 65536 } } } },
            pageCache = new { pages = pageCache, activePages = 0 },
        },
    };

    private static async Task<Dictionary<string, long>> Vmstat(HttpClient client, string machine) =>
        (await client.GetStringAsync($"/machines/{machine}/proc/vmstat", Ct)).TrimEnd('\n').Split('\n')
            .Select(l => l.Split(' ')).ToDictionary(p => p[0], p => long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public async Task AMachineFullOfPageCache_ServesAClientThroughReclaim_AndShowsIt()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var created = await client.PostOk("/machines", Busy("busy"), 201);
        Assert.True((long)created["totals"]!["freePages"]! < 1536 + 512, "the boot reads leave free memory near the watermarks");
        var before = await Vmstat(client, "busy");

        for (var i = 0; i < 400; i++)
        {
            await client.PostOk("/machines/busy/zones/Normal/alloc_pages", new { order = 2, cpu = i % 2 }, 201); // 1600 pages
        }

        var after = await Vmstat(client, "busy");
        Assert.True(after["pgsteal_kswapd"] + after["pgsteal_direct"] >= before["pgsteal_kswapd"] + before["pgsteal_direct"] + 1600 - 1621);
        Assert.True(after["nr_file_pages"] < before["nr_file_pages"] - 1000);
        Assert.Equal(after["nr_zone_inactive_file"], after["nr_inactive_file"]);
        var stats = await client.GetJson("/machines/busy/stats");
        Assert.Equal(after["nr_inactive_file"], (long)stats["zones"]![0]!["lru"]!["inactive_file"]!);
        Assert.Equal(after["pageoutrun"], (long)stats["reclaim"]!["pageoutrun"]!);
        var zoneinfo = await client.GetStringAsync("/machines/busy/proc/zoneinfo", Ct);
        Assert.Contains($"\n      nr_zone_inactive_file {after["nr_inactive_file"]}\n", zoneinfo, StringComparison.Ordinal);
        Assert.Contains("\n  node_unreclaimable:  0\n", zoneinfo, StringComparison.Ordinal);
        var metrics = await client.GetStringAsync("/metrics", Ct);
        Assert.Matches($"\npagealloc_lru_pages{{[^}}]*lru=\"inactive_file\",machine=\"busy\",[^}}]*}} {after["nr_inactive_file"]}\n", metrics);
        Assert.Matches($"\npagealloc_vmscan_events_total{{[^}}]*event=\"pgsteal_kswapd\",machine=\"busy\",[^}}]*}} {after["pgsteal_kswapd"]}\n", metrics);
    }

    [Fact]
    public async Task PageCache_AndDropCaches_FillAndEmptyTheLru()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();

        var read = await client.PostOk("/page_cache?pages=100000&active=true&cpu=0", new { });
        Assert.Equal((100000L, 0L), ((long)read["read"]!, (long)read["notRead"]!));
        Assert.Equal(100000L, (long)read["lru"]!["active_file"]!);
        var page = await client.GetJson("/zones/Normal/pages/0x100000");
        Assert.Equal(["allocated", "lru"], page["flags"]!.AsArray().Select(f => (string)f!));
        Assert.Empty((await client.GetJson("/zones/Normal/allocations"))["allocations"]!.AsArray()); // nobody's allocation

        var dropped = await client.PostOk("/drop_caches?value=3", new { });

        Assert.Equal(100000L, (long)dropped["freedPages"]!);
        var vmstat = await Vmstat(client, "default");
        Assert.Equal((0L, 1L, 1L), (vmstat["nr_file_pages"], vmstat["drop_pagecache"], vmstat["drop_slab"]));
    }

    [Theory]
    [InlineData("/page_cache?pages=-1")]
    [InlineData("/page_cache?pages=99999999999")]
    [InlineData("/page_cache?pages=10&cpu=64")]
    [InlineData("/page_cache")]
    [InlineData("/page_cache?pages=ten")]
    [InlineData("/drop_caches?value=0")]
    [InlineData("/drop_caches?value=5")]
    [InlineData("/drop_caches?value=1&cpu=-1")]
    [InlineData("/drop_caches")]
    public async Task BadInput_Is400_AndChangesNothing(string path)
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var before = await client.GetStringAsync("/proc/vmstat", Ct);

        var response = await client.PostAsync(path, null, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(before, await client.GetStringAsync("/proc/vmstat", Ct));
    }

    [Fact]
    public async Task AClientsCallOnAPageCachePage_Is409LruPage_AndChangesNothing()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        await client.PostOk("/page_cache?pages=600&cpu=0", new { });
        var before = await client.GetStringAsync("/proc/vmstat", Ct);

        foreach (var (path, body) in new (string, object)[]
        {
            ("free_pages", new { pfn = 0x100000, order = 0 }),
            ("put_page", new { pfn = 0x100000 }),
            ("get_page", new { pfn = 0x100000 }),
            ("split_page", new { pfn = 0x100000, order = 0 }),
            ("hwpoison", new { pfn = 0x100000 }),
            ("free_contig_range", new { pfn = 0x100000, nrPages = 16 }),
            ("free_pages_bulk", new { pfns = new[] { 0x100000, 0x100001 } }),
        })
        {
            var response = await client.PostAsJsonAsync($"/zones/Normal/{path}", body, Ct);
            Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
            Assert.Equal("lru-page", (string)JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!["kind"]!);
        }
        Assert.Equal(before, await client.GetStringAsync("/proc/vmstat", Ct));
    }

    [Fact]
    public async Task RacingReadersAndClients_LeaveEveryPageAccountedFor()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        await client.PostOk("/machines", Busy("race", pageCache: 60000), 201);
        var pfns = new System.Collections.Concurrent.ConcurrentBag<long>();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(async t =>
        {
            for (var i = 0; i < 40; i++)
            {
                if (t < 2)
                {
                    await client.PostOk($"/machines/race/page_cache?pages=256&cpu={t}", new { });
                }
                else
                {
                    var r = await client.PostOk("/machines/race/zones/Normal/alloc_pages", new { order = 1, cpu = t % 2 }, 201);
                    pfns.Add((long)r["pfn"]!);
                }
            }
        }));

        Assert.Equal(240, pfns.Distinct().Count());
        var zone = (await client.GetJson("/machines/race/stats"))["zones"]![0]!;
        var lru = (long)zone["lru"]!["inactive_file"]!;
        Assert.Equal(65536L, (long)zone["freePages"]! + (long)zone["pcpPages"]! + lru + (240 * 2));
        foreach (var pfn in pfns)
        {
            await client.PostOk("/machines/race/zones/Normal/free_pages", new { pfn, order = 1 });
        }
        await client.PostOk("/machines/race/drop_caches?value=1", new { });
        await client.PostOk("/machines/race/zones/Normal/drain_pages", new { });
        Assert.Equal(65536L, (long)(await client.GetJson("/machines/race/stats"))["totals"]!["freePages"]!);
    }

    [Fact]
    public async Task CompactMemory_GathersAFragmentedZonesFreeMemory_AndAHugepageThenSucceeds()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        await client.PostOk("/machines", new
        {
            name = "frag",
            config = new { cpus = 1, minFreeKbytes = 256, nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 1048576, pages = 4096 } } } } },
        }, 201);
        var random = new Random(7);
        var mine = new List<long>();
        for (var i = 0; i < 3600; i++)
        {
            if (random.Next(2) == 0)
            {
                mine.Add((long)(await client.PostOk("/machines/frag/zones/Normal/alloc_pages", new { order = 0, cpu = 0, gfp = "GFP_HIGHUSER_MOVABLE" }, 201))["pfn"]!);
            }
            else
            {
                await client.PostOk("/machines/frag/page_cache?pages=1&cpu=0", new { });
            }
        }
        await client.PostOk("/machines/frag/zones/Normal/free_pages_bulk", new { pfns = mine, cpu = 0 });
        await client.PostOk("/machines/frag/zones/Normal/drain_pages", new { });
        var before = (await client.GetJson("/machines/frag/zones/Normal/stats"))["buddyinfo"]!.AsArray().Select(n => (long)n!).ToArray();
        Assert.Equal(0, before[9] + before[10]);

        var compacted = await client.PostOk("/machines/frag/compact_memory?cpu=0", new { });

        Assert.True((long)compacted["migrated"]! > 0);
        await client.PostOk("/machines/frag/zones/Normal/drain_pages", new { });
        var vmstat = await Vmstat(client, "frag");
        Assert.Equal((long)compacted["migrated"]!, vmstat["pgmigrate_success"]);
        Assert.True(vmstat["compact_migrate_scanned"] > 0 && vmstat["compact_free_scanned"] > 0);
        var thp = await client.PostAsJsonAsync("/machines/frag/zones/Normal/alloc_pages", new { order = 9, cpu = 0, gfp = "GFP_HIGHUSER_MOVABLE|__GFP_COMP" }, Ct);
        Assert.Equal(HttpStatusCode.Created, thp.StatusCode);
    }
}
