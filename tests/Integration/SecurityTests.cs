using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

/// <summary>With API keys on: identity, ownership of pages, page and request quotas, administrators.</summary>
public class SecurityTests
{
    internal const string AliceKey = "alice-0123456789abcdef";
    internal const string BobKey = "bob-0123456789abcdef";
    internal const string RootKey = "root-0123456789abcdef";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A host with three keys: alice (64 pages), bob, and root, an administrator.</summary>
    internal static PageAllocApp WithKeys(params (string Key, string Value)[] more) => new(
    [
        ("Security:ApiKeys:0:Name", "alice"), ("Security:ApiKeys:0:Key", AliceKey), ("Security:ApiKeys:0:MaxPages", "64"),
        ("Security:ApiKeys:1:Name", "bob"), ("Security:ApiKeys:1:Key", BobKey),
        ("Security:ApiKeys:2:Name", "root"), ("Security:ApiKeys:2:Key", RootKey), ("Security:ApiKeys:2:Admin", "true"),
        .. more,
    ]);

    internal static HttpClient As(PageAllocApp app, string key)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    /// <summary>The generated client, sending the key.</summary>
    private static PageAllocClient Api(PageAllocApp app, string key) => new(As(app, key));

    [Theory]
    [InlineData(null)]
    [InlineData("not-a-configured-key-at-all")]
    public async Task WithoutAValidKey_EveryCallIs401_ButHealthAndTheDocumentAreOpen(string? key)
    {
        await using var app = WithKeys();
        var client = key is null ? app.CreateClient() : As(app, key);

        var alloc = await client.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0 }, Ct);
        var stats = await client.GetAsync("/stats", Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, alloc.StatusCode);
        Assert.Equal("application/problem+json", alloc.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Unauthorized, stats.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/ready", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/swagger/v1/swagger.json", Ct)).StatusCode);
        Assert.Equal(0, (await Api(app, RootKey).GetStatsAsync("default", Ct)).Totals.AllocatedPages);
    }

    [Fact]
    public async Task AnotherKeysPages_CannotBeFreed_TheOwnerAndAnAdministratorCan()
    {
        await using var app = WithKeys();
        var (alice, bob, root) = (Api(app, AliceKey), As(app, BobKey), Api(app, RootKey));
        var first = (await alice.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 2 }, Ct)).Pfn;
        var second = (await alice.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 2 }, Ct)).Pfn;

        var stolen = await bob.PostAsJsonAsync("/zones/Normal/free_pages", new { pfn = first, order = 2 }, Ct);
        var split = await bob.PostAsJsonAsync("/zones/Normal/split_page", new { pfn = first, order = 2 }, Ct);

        Assert.Equal(HttpStatusCode.Forbidden, stolen.StatusCode);
        Assert.Contains("urn:pagealloc:problem:not-owner", await stolen.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, split.StatusCode);
        await alice.FreePagesAsync("default", "Normal", new BlockRequest { Pfn = first, Order = 2 }, Ct);
        await root.FreePagesAsync("default", "Normal", new BlockRequest { Pfn = second, Order = 2 }, Ct);
        Assert.Equal(0, (await root.GetStatsAsync("default", Ct)).Totals.AllocatedPages);
    }

    [Fact]
    public async Task AKeysPageLimit_IsItsMemcgsMemoryMax_AndLeavesOtherKeysTheirs()
    {
        await using var app = WithKeys();
        var (alice, bob) = (As(app, AliceKey), As(app, BobKey));

        var allocated = await new PageAllocClient(alice).AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 6 }, Ct); // 64 pages: alice's memory.max
        var refused = await alice.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0 }, Ct);

        Assert.Equal("GFP_KERNEL_ACCOUNT", allocated.Gfp);
        Assert.Equal(HttpStatusCode.InsufficientStorage, refused.StatusCode);
        Assert.Contains("memcg-max", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        await bob.PostOk("/zones/Normal/alloc_pages", new { order = 9 }, 201);
    }

    [Theory]
    [InlineData("/reset", "{}")]
    [InlineData("/tests/page_alloc_high_order", """{"iterations":1}""")]
    public async Task MachineWideCalls_AreForAdministratorsOnly(string path, string body)
    {
        await using var app = WithKeys();
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        var byAlice = await As(app, AliceKey).PostAsync(path, content, Ct);
        var byRoot = await As(app, RootKey).PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.Forbidden, byAlice.StatusCode);
        Assert.Equal("application/problem+json", byAlice.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.OK, byRoot.StatusCode);
    }

    [Fact]
    public async Task AKeysRequestRate_IsLimited_WithoutSlowingOtherKeys()
    {
        await using var app = WithKeys(("Security:ApiKeys:1:RequestsPerSecond", "5"));
        var (alice, bob) = (As(app, AliceKey), As(app, BobKey));

        var bobs = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => bob.GetAsync("/zones", Ct)));
        var alices = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => alice.GetAsync("/zones", Ct)));

        Assert.InRange(bobs.Count(r => r.StatusCode == HttpStatusCode.TooManyRequests), 10, 15);
        Assert.All(alices, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
    }

    [Fact]
    public async Task TheLoadGenerator_WithANonAdministratorKey_RunsEveryWorkloadCleanly()
    {
        await using var app = WithKeys();
        var client = new PageAlloc.LoadGen.TimedCalls(new PageAlloc.Client.PageAllocClient(As(app, BobKey)));

        foreach (var workload in new[] { "seed", "mixed", "vmalloc" })
        {
            var options = new PageAlloc.LoadGen.LoadOptions { Workload = workload, Concurrency = 2, Requests = 40, Pages = 16, LiveBlocks = 4 };
            var report = await PageAlloc.LoadGen.LoadRunner.RunAsync(client, options, progress: null, Ct);

            Assert.Empty(report.ErrorsByStatus);
            Assert.True(report.EveryPageFreed, $"{workload}: {report.PagesAllocated} allocated, {report.PagesFreed} freed");
        }
    }

    [Fact]
    public async Task RacingClients_OfTwoKeys_NeverFreeEachOthersPages()
    {
        await using var app = WithKeys();
        var (aliceApi, bob) = (Api(app, AliceKey), As(app, BobKey));
        var seen = new System.Collections.Concurrent.ConcurrentQueue<long>();
        var bobSucceeded = 0;
        using var done = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        // Alice's clients allocate and free; Bob keeps trying to free whatever Alice was handed.
        var alices = Enumerable.Range(0, 4).Select(async c =>
        {
            for (var i = 0; i < 100; i++)
            {
                var pfn = (await aliceApi.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 0, Cpu = c }, Ct)).Pfn;
                seen.Enqueue(pfn);
                await aliceApi.FreePagesAsync("default", "Normal", new BlockRequest { Pfn = pfn, Order = 0, Cpu = c }, Ct);
            }
        }).ToArray();
        var bobs = Enumerable.Range(0, 2).Select(c => Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                if (seen.TryDequeue(out var pfn))
                {
                    var r = await bob.PostAsJsonAsync("/zones/Normal/free_contig_range", new { pfn, nrPages = 1, cpu = c }, CancellationToken.None);
                    Assert.True(r.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Conflict, $"{r.StatusCode}");
                    if (r.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref bobSucceeded);
                    }
                }
                else
                {
                    await Task.Yield();
                }
            }
        })).ToArray();
        await Task.WhenAll(alices);
        await done.CancelAsync();
        await Task.WhenAll(bobs);

        Assert.Equal(0, bobSucceeded);
        Assert.Equal(0, (await Api(app, RootKey).GetStatsAsync("default", Ct)).Totals.AllocatedPages);
    }
}
