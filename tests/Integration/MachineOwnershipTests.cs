using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace PageAlloc.Tests.Integration;

/// <summary>With API keys: a machine is its creator's (others get 404), administrators see all, each key has a machine quota.</summary>
public class MachineOwnershipTests
{
    private const string AliceKey = SecurityTests.AliceKey;
    private const string BobKey = SecurityTests.BobKey;
    private const string RootKey = SecurityTests.RootKey;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static PageAllocApp WithKeys(params (string Key, string Value)[] more) => SecurityTests.WithKeys(more);

    private static HttpClient As(PageAllocApp app, string key) => SecurityTests.As(app, key);

    private static readonly object Small = new
    {
        name = "alices",
        config = new { cpus = 2, nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 0x100000, pages = 4096 } } } } },
    };

    private static List<string> Names(JsonNode list) => [.. list["machines"]!.AsArray().Select(m => m!["name"]!.GetValue<string>())];

    [Fact]
    public async Task AKeysMachine_IsItsOwn_OthersSeeNothing_AdministratorsSeeAll()
    {
        await using var app = WithKeys();
        var alice = As(app, AliceKey);
        var bob = As(app, BobKey);
        var root = As(app, RootKey);

        var created = await alice.PostOk("/machines", Small, 201);
        Assert.Equal("alice", created["owner"]!.GetValue<string>());
        await alice.PostOk("/machines/alices/zones/Normal/alloc_pages", new { order = 0 }, 201);

        Assert.Equal(["default", "alices"], Names(await alice.GetJson("/machines")));
        Assert.Equal(["default"], Names(await bob.GetJson("/machines")));
        Assert.Equal(["default", "alices"], Names(await root.GetJson("/machines")));
        foreach (var call in new Func<Task<HttpResponseMessage>>[]
        {
            () => bob.GetAsync("/machines/alices", Ct),
            () => bob.GetAsync("/machines/alices/proc/buddyinfo", Ct),
            () => bob.PostAsJsonAsync("/machines/alices/zones/Normal/alloc_pages", new { order = 0 }, Ct),
            () => bob.DeleteAsync("/machines/alices", Ct),
        })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await call()).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await root.GetAsync("/machines/alices/stats", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await root.DeleteAsync("/machines/alices", Ct)).StatusCode);
    }

    [Fact]
    public async Task AnOwner_AdministersItsOwnMachine_ButNotTheSharedOne()
    {
        await using var app = WithKeys();
        var alice = As(app, AliceKey);
        await alice.PostOk("/machines", Small, 201);

        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync("/machines/alices/reset", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.PatchAsJsonAsync("/machines/alices/sys/kernel/debug/fail_page_alloc", new { probability = 0 }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync("/machines/alices/vmstat_update", null, Ct)).StatusCode);

        var refused = await alice.PostAsync("/reset", null, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await alice.PostAsync("/machines/default/reset", null, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await As(app, RootKey).PostAsync("/machines/alices/reset", null, Ct)).StatusCode);
    }

    [Fact]
    public async Task RacingCreates_OfOneKey_StopAtItsQuota()
    {
        await using var app = WithKeys(("Limits:MachinesPerKey", "3"));
        var alice = As(app, AliceKey);

        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => alice.PostAsJsonAsync("/machines", new { name = $"a-{i}", config = new { cpus = 1, nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 0, pages = 2048 } } } } } }, Ct)));

        Assert.Equal(3, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        var refusal = await responses.First(r => r.StatusCode != HttpStatusCode.Created).Content.ReadAsStringAsync(Ct);
        Assert.Contains("MachinesPerKey", refusal, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, (await As(app, BobKey).PostAsJsonAsync("/machines", Small, Ct)).StatusCode);
    }
}
