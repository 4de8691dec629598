using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using PageAlloc.Api.Machines;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// Machines as resources: created of their own shape, used at /machines/{machine}/..., independent
/// of each other and of default, deleted, bounded in number and memory, owned with keys.
/// </summary>
public class MachinesTests(SharedPageAllocApp shared) : IClassFixture<SharedPageAllocApp>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A small machine: one Normal zone of 16 MiB, 2 cpus.</summary>
    private static object Small(string? name = null, int pages = 4096, bool pinned = false) => new
    {
        name,
        pinned,
        config = new { cpus = 2, nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 0x100000, pages } } } } },
    };

    [Fact]
    public async Task ACreatedMachine_HasItsOwnShape_AndItsCallsLeaveDefaultUntouched()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var defaultBefore = await client.StatsWithoutLocks();

        var response = await client.PostAsJsonAsync("/machines", Small("lab-1"), Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("/machines/lab-1", response.Headers.Location?.OriginalString);
        var machine = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
        Assert.Equal(2, machine["cpus"]!.GetValue<int>());
        Assert.Equal(["Normal"], machine["zones"]!.AsArray().Select(z => z!.GetValue<string>()));
        Assert.Equal(4096, machine["totals"]!["managedPages"]!.GetValue<long>());

        var block = await client.PostOk("/machines/lab-1/zones/Normal/alloc_pages", new { order = 3 }, 201);
        var location = (await client.PostAsJsonAsync("/machines/lab-1/zones/Normal/alloc_pages", new { order = 0 }, Ct)).Headers.Location!.OriginalString;
        Assert.StartsWith("/machines/lab-1/zones/Normal/pages/", location, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(location, Ct)).StatusCode);
        await client.PostOk("/machines/lab-1/reset", new { });

        Assert.Equal(defaultBefore, await client.StatsWithoutLocks());
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsJsonAsync("/machines/lab-1/zones/DMA32/alloc_pages", new { order = 0 }, Ct)).StatusCode);
        var zoneinfo = await client.GetStringAsync("/machines/lab-1/proc/zoneinfo", Ct);
        Assert.Contains("cpu: 1", zoneinfo, StringComparison.Ordinal);
        Assert.DoesNotContain("cpu: 2", zoneinfo, StringComparison.Ordinal);
        Assert.NotNull(block["pfn"]);
    }

    [Fact]
    public async Task TheAliases_AreDefault_OneCodePath()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();

        var block = await client.PostOk("/zones/Normal/alloc_pages", new { order = 2 }, 201);
        var pfn = block["pfn"]!.GetValue<long>();

        var state = await client.GetJson($"/machines/default/zones/Normal/pages/{pfn}");
        Assert.Equal("allocated", state["where"]!.GetValue<string>());
        Assert.Equal(await client.GetStringAsync("/proc/buddyinfo", Ct), await client.GetStringAsync("/machines/default/proc/buddyinfo", Ct));
        await client.PostOk("/machines/default/zones/Normal/free_pages", new { pfn, order = 2 });
        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsJsonAsync("/zones/Normal/free_pages", new { pfn, order = 2 }, Ct)).StatusCode);
    }

    [Theory]
    [InlineData("""{"name":"Lab_1"}""", "name")]
    [InlineData("""{"config":{"cpus":0}}""", "Cpus")]
    [InlineData("""{"config":{"nodes":[{"id":0,"zones":[{"name":"Highmem","startPfn":0,"pages":4096}]}]}}""", "Highmem")]
    [InlineData("""{"config":{"nodes":[{"id":0,"zones":[{"name":"Normal","startPfn":0,"pages":-5}]}]}}""", "Pages 1..")]
    [InlineData("""{"config":{"cpus":"four"}}""", "cpus")]
    [InlineData("""{"nam":"x"}""", "nam")]
    [InlineData("""{"config":{"memcgs":[]}}""", "memcgs")]
    public async Task ABadCreate_Is400_NamesTheValue_AndCreatesNothing(string body, string named)
    {
        var app = shared.App; // a refusal: see SharedPageAllocApp
        var client = app.CreateClient();

        var response = await client.PostAsync("/machines", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(named, await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        var list = await client.GetJson("/machines");
        Assert.Equal(["default"], list["machines"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()));
    }

    [Fact]
    public async Task ANameTaken_Is409_AndDefaultCannotBeDeleted()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        await client.PostOk("/machines", Small("twin"), 201);

        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsJsonAsync("/machines", Small("twin"), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsJsonAsync("/machines", Small("default"), Ct)).StatusCode);
        var refused = await client.DeleteAsync("/machines/default", Ct);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("default-machine", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADeletedMachine_Is404_EverywhereItWas_AndItsBudgetIsFree()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var before = (await client.GetJson("/machines"))["usedBytes"]!.GetValue<long>();
        await client.PostOk("/machines", Small("gone"), 201);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/machines/gone", Ct)).StatusCode);

        foreach (var path in new[] { "/machines/gone", "/machines/gone/zones", "/machines/gone/proc/buddyinfo", "/machines/gone/stats" })
        {
            var response = await client.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Contains("unknown-machine", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsJsonAsync("/machines/gone/zones/Normal/alloc_pages", new { order = 0 }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync("/machines/gone", Ct)).StatusCode);
        Assert.Equal(before, (await client.GetJson("/machines"))["usedBytes"]!.GetValue<long>());
    }

    [Fact]
    public async Task RacingCreates_NeverPassTheMemoryBudget_OrTheMachineCount()
    {
        // Default is 2,097,151 pages (33.6 MB of page state); the budget leaves room for 8 small machines of 65536 pages (1 MB each).
        const long small = 65536L * 16;
        var budget = 2_097_151L * 16 + (8 * small) + (small / 2);
        await using var app = new PageAllocApp(("Limits:MachineMemoryBytes", budget.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("Limits:MaxMachines", "20"));
        var client = app.CreateClient();

        var responses = await Task.WhenAll(Enumerable.Range(0, 32).Select(i => client.PostAsJsonAsync("/machines", Small($"race-{i}", 65536), Ct)));

        Assert.Equal(8, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.Created), r => Assert.Equal(HttpStatusCode.InsufficientStorage, r.StatusCode));
        var list = await client.GetJson("/machines");
        Assert.Equal(9, list["count"]!.GetValue<int>());
        Assert.True(list["usedBytes"]!.GetValue<long>() <= budget);
        var refusal = await (await client.PostAsJsonAsync("/machines", Small("one-more", 65536), Ct)).Content.ReadAsStringAsync(Ct);
        Assert.Contains("Limits:MachineMemoryBytes", refusal, StringComparison.Ordinal);

        await using var few = new PageAllocApp(("Limits:MaxMachines", "3"));
        var fewClient = few.CreateClient();
        var created = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => fewClient.PostAsJsonAsync("/machines", Small($"few-{i}"), Ct)));
        Assert.Equal(2, created.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(3, (await fewClient.GetJson("/machines"))["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task DeletesRacingPageCalls_AnswerEachCallWhole_OrNotFound_NeverAFault()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();

        for (var round = 0; round < 8; round++)
        {
            var name = $"churn-{round}";
            await client.PostOk("/machines", Small(name), 201);
            var calls = Enumerable.Range(0, 32).Select(async i =>
            {
                var alloc = await client.PostAsJsonAsync($"/machines/{name}/zones/Normal/alloc_pages", new { order = i % 4 }, Ct);
                statuses.Add(alloc.StatusCode);
                if (alloc.StatusCode == HttpStatusCode.Created)
                {
                    var pfn = JsonNode.Parse(await alloc.Content.ReadAsStringAsync(Ct))!["pfn"]!.GetValue<long>();
                    var free = await client.PostAsJsonAsync($"/machines/{name}/zones/Normal/free_pages", new { pfn, order = i % 4 }, Ct);
                    statuses.Add(free.StatusCode);
                }
            }).ToList();
            calls.Add(Task.Run(async () => statuses.Add((await client.DeleteAsync($"/machines/{name}", Ct)).StatusCode), Ct));
            await Task.WhenAll(calls);
        }

        Assert.All(statuses, s => Assert.Contains(s, new[] { HttpStatusCode.Created, HttpStatusCode.OK, HttpStatusCode.NoContent, HttpStatusCode.NotFound }));
        Assert.Equal(["default"], (await client.GetJson("/machines"))["machines"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()));
    }

    [Fact]
    public async Task AnIdleMachine_IsDeleted_UnlessPinned()
    {
        var time = new ManualTime();
        await using var app = new PageAllocApp(("Limits:MachineIdleMinutes", "5"));
        await using var timed = app.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<TimeProvider>(time)));
        var client = timed.CreateClient();
        await client.PostOk("/machines", Small("idle"), 201);
        await client.PostOk("/machines", Small("kept", pinned: true), 201);
        await client.PostOk("/machines", Small("busy"), 201);
        var registry = timed.Services.GetRequiredService<MachineRegistry>();

        time.Advance(TimeSpan.FromMinutes(4));
        await client.GetJson("/machines/busy/stats");
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(1, await timed.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<IdleMachineSweeper>().Single().SweepAsync());

        var names = (await client.GetJson("/machines"))["machines"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(["default", "busy", "kept"], names);
        var kept = await client.GetJson("/machines/kept");
        Assert.Null(kept["idleDeletionAt"]?.GetValue<DateTimeOffset?>());
    }

    [Fact]
    public async Task EachMachine_StreamsOnlyItsOwnEvents()
    {
        await using var app = PageAllocApp.OnKestrel();
        using var http = new HttpClient { BaseAddress = app.Address };
        await http.PostAsJsonAsync("/machines", Small("quiet"), Ct);
        await http.PostAsJsonAsync("/machines", Small("loud"), Ct);

        var quiet = http.GetStringAsync("/machines/quiet/events?format=perf-script&seconds=3", Ct);
        var loud = http.GetStringAsync("/machines/loud/events?format=perf-script&seconds=3", Ct);
        // Both streams listening before the calls (a fixed wait was too short on a loaded CI run).
        var streams = app.Services.GetRequiredService<PageAlloc.Api.Endpoints.EventStreams>();
        for (var i = 0; i < 200 && streams.Open < 2; i++)
        {
            await Task.Delay(10, Ct);
        }
        Assert.Equal(2, streams.Open);
        for (var i = 0; i < 5; i++)
        {
            await http.PostAsJsonAsync("/machines/loud/zones/Normal/alloc_pages", new { order = 0 }, Ct);
        }

        Assert.Contains("mm_page_alloc", await loud, StringComparison.Ordinal);
        Assert.DoesNotContain("mm_page_alloc", await quiet, StringComparison.Ordinal);
    }

    /// <summary>A clock the test moves.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 12, 2, 0, 0, 0, TimeSpan.Zero).AddTicks(Interlocked.Read(ref _ticks));
    }
}
