using System.Net;
using System.Net.Http.Json;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// With API keys and no MaxPages set, no key can take a shared machine from the others; the
/// reserves and HWPoison are an administrator's; a poisoned page is uncharged when it is freed.
/// </summary>
public class TenantIsolationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AKeyWithoutMaxPages_GetsAShare_AndTheOthersKeepAllocating()
    {
        await using var app = SecurityTests.WithKeys();
        var bob = SecurityTests.As(app, SecurityTests.BobKey);
        var alice = SecurityTests.As(app, SecurityTests.AliceKey);
        var root = SecurityTests.As(app, SecurityTests.RootKey);

        long taken = 0;
        HttpResponseMessage last;
        do
        {
            last = await bob.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 10, gfp = "GFP_HIGHUSER_MOVABLE" }, Ct);
            taken += last.StatusCode == HttpStatusCode.Created ? 1024 : 0;
        }
        while (last.StatusCode == HttpStatusCode.Created && taken < 4_000_000);

        Assert.Equal(HttpStatusCode.InsufficientStorage, last.StatusCode);
        Assert.Contains("memcg-max", await last.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.InRange(taken, 600_000, 2_097_151 / 3); // a third of the machine's pages: three keys
        Assert.Equal(HttpStatusCode.Created, (await alice.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 4 }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await root.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 10 }, Ct)).StatusCode);
    }

    [Fact]
    public async Task TheReservesAndHwPoison_AreAnAdministratorsOnASharedMachine()
    {
        await using var app = SecurityTests.WithKeys();
        var alice = SecurityTests.As(app, SecurityTests.AliceKey);
        var root = SecurityTests.As(app, SecurityTests.RootKey);

        var memalloc = await alice.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0, gfp = "GFP_KERNEL|__GFP_MEMALLOC" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, memalloc.StatusCode);
        Assert.Contains("__GFP_MEMALLOC", await memalloc.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, (await root.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0, gfp = "GFP_KERNEL|__GFP_MEMALLOC" }, Ct)).StatusCode);

        var page = await alice.PostOk("/zones/Normal/alloc_pages", new { order = 0 }, 201);
        var pfn = page["pfn"]!.GetValue<long>();
        Assert.Equal(HttpStatusCode.Forbidden, (await alice.PostAsJsonAsync("/zones/Normal/hwpoison", new { pfn }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await root.PostAsJsonAsync("/zones/Normal/hwpoison", new { pfn }, Ct)).StatusCode);

        // Alice frees her poisoned page: it is leaked, and no longer counts against her 64 pages.
        await alice.PostOk("/zones/Normal/free_pages", new { pfn, order = 0 });
        for (var i = 0; i < 64; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await alice.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0 }, Ct)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.InsufficientStorage, (await alice.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0 }, Ct)).StatusCode);
    }

    [Fact]
    public async Task OnItsOwnMachine_AKeyMayPoisonPages()
    {
        await using var app = SecurityTests.WithKeys();
        var bob = SecurityTests.As(app, SecurityTests.BobKey);
        await bob.PostOk("/machines", new { name = "bobs", config = new { cpus = 1, nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 0, pages = 8192 } } } } } }, 201);
        var page = await bob.PostOk("/machines/bobs/zones/Normal/alloc_pages", new { order = 0 }, 201);

        Assert.Equal(HttpStatusCode.OK, (await bob.PostAsJsonAsync("/machines/bobs/zones/Normal/hwpoison", new { pfn = page["pfn"]!.GetValue<long>() }, Ct)).StatusCode);
    }
}
