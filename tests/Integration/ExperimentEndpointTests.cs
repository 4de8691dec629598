using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace PageAlloc.Tests.Integration;

/// <summary>/experiments over HTTP: started, followed, read as JSON and CSV, refused, cancelled.</summary>
public class ExperimentEndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static object SeedClaim(int passes = 1) => new
    {
        workload = new { kind = "trace", trace = "git-clone-tar", rangeEvery = 50, passes },
        variants = new object[] { new { name = "per-page", strategy = "per-page" }, new { name = "chunked", strategy = "chunked" } },
        repeat = 2,
        points = 40,
    };

    private static async Task<JsonNode> Json(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;

    /// <summary>Follows the progress stream to its end and returns its events (name, data).</summary>
    private static async Task<List<(string Event, JsonNode Data)>> Follow(HttpClient client, string href)
    {
        var events = new List<(string, JsonNode)>();
        using var response = await client.GetAsync(href + "/progress", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        await foreach (var item in System.Net.ServerSentEvents.SseParser.Create(await response.Content.ReadAsStreamAsync(Ct)).EnumerateAsync(Ct))
        {
            events.Add((item.EventType, JsonNode.Parse(item.Data)!));
        }
        return events;
    }

    [Fact]
    public async Task AnExperiment_Runs_StreamsItsProgress_AndAnswersItsTimelinesAsJsonAndCsv_LeavingTheMachineAlone()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var before = await client.StatsWithoutLocks();

        var started = await client.PostAsJsonAsync("/machines/default/experiments", SeedClaim(), Ct);

        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var href = started.Headers.Location!.OriginalString;
        Assert.StartsWith("/machines/default/experiments/", href, StringComparison.Ordinal);
        Assert.Equal("running", (string)(await Json(started))["state"]!);

        var events = await Follow(client, href);
        Assert.Equal("end", events[^1].Event);
        Assert.Equal("done", (string)events[^1].Data["state"]!);
        Assert.All(events.SkipLast(1), e => Assert.Equal("progress", e.Event));
        var fractions = events.SkipLast(1).Select(e => (double)e.Data["fraction"]!).ToList();
        Assert.Equal(fractions.Order(), fractions);
        Assert.Equal(1.0, fractions[^1]);

        var result = await Json(await client.GetAsync(href, Ct));
        var variants = result["variants"]!.AsArray();
        Assert.Equal(["per-page", "chunked"], variants.Select(v => (string)v!["variant"]!));
        Assert.All(variants, v => Assert.Equal(2, v!["runs"]!.AsArray().Count));
        var chunkedBlocks = result["summary"]!.AsArray().Single(s => (string)s!["measure"]! == "free_blocks_order9_mean" && (string)s["variant"]! == "chunked")!;
        Assert.True((double)chunkedBlocks["differenceMedian"]! > 0, "chunked keeps more order-9 blocks free than per-page");

        var csv = await client.GetAsync(href + "/timeline.csv", Ct);
        Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
        var rows = (await csv.Content.ReadAsStringAsync(Ct)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("variant,repeat,step,free_pages,", rows[0], StringComparison.Ordinal);
        Assert.Equal(1 + variants.Sum(v => v!["runs"]!.AsArray().Sum(r => r!["timeline"]!.AsArray().Count)), rows.Length);

        var list = await Json(await client.GetAsync("/experiments", Ct)); // default's alias lists the same
        Assert.Equal(href.Split('/')[^1], (string)list["experiments"]![0]!["id"]!);
        Assert.Null(list["experiments"]![0]!["variants"]);
        Assert.Equal(before, await client.StatsWithoutLocks());
    }

    [Fact]
    public async Task TwoVariantsThatChangeNothing_GiveTheSameTimelines_OverHttp()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var body = new
        {
            workload = new { kind = "mix", steps = 4000, rangeEvery = 25 },
            variants = new object[] { new { name = "a" }, new { name = "b", strategy = "chunked" } },
            seed = 42,
        };
        var href = (await client.PostAsJsonAsync("/machines/default/experiments", body, Ct)).Headers.Location!.OriginalString;
        await Follow(client, href);

        var variants = (await Json(await client.GetAsync(href, Ct)))["variants"]!.AsArray();
        static JsonArray Untimed(JsonNode variant)
        {
            var timeline = variant["runs"]![0]!["timeline"]!.AsArray().DeepClone().AsArray();
            foreach (var sample in timeline)
            {
                sample!.AsObject().Remove("elapsedNs");
            }
            return timeline;
        }
        Assert.True(JsonNode.DeepEquals(Untimed(variants[0]!), Untimed(variants[1]!)));
        Assert.True(Untimed(variants[0]!).Count > 10);
    }

    [Fact]
    public async Task ABadExperiment_Is400_NamingEveryBadMember_AndNothingRuns()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var body = new
        {
            workload = new { kind = "trace", trace = "no-such-trace", zone = "Nowhere", rangeOrder = 12 },
            variants = new object[] { new { name = "x", minFreeKbytes = -1 }, new { name = "x" } },
            repeat = 11,
        };

        var response = await client.PostAsJsonAsync("/experiments", body, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await Json(response))["errors"]!.AsObject().Select(e => e.Key).ToHashSet();
        Assert.Superset(new HashSet<string> { "workload.trace", "workload.zone", "workload.rangeOrder", "variants[0].minFreeKbytes", "variants[1].name", "repeat" }, errors);
        Assert.Empty((await Json(await client.GetAsync("/experiments", Ct)))["experiments"]!.AsArray());
        var unknownKind = await client.PostAsJsonAsync("/experiments", new { workload = new { kind = "stress" }, variants = new object[] { new { } } }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, unknownKind.StatusCode);
        var noVariants = await client.PostAsJsonAsync("/experiments", new { workload = new { kind = "mix" } }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, noVariants.StatusCode);
        var badFragment = await client.PostAsJsonAsync("/experiments",
            new { workload = new { kind = "mix" }, variants = new object[] { new { } }, fragment = new { freePages = 1L << 40, unusableIndex = 0.5 } }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badFragment.StatusCode);
        Assert.Contains("fragment.freePages", await badFragment.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ARunningExperiment_IsDeleted_ItsRunsStop_AndTheNextOneMayStartAtOnce()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var endless = new { workload = new { kind = "seed-loop", steps = 1_000_000 }, variants = new object[] { new { name = "per-page", strategy = "per-page" } }, repeat = 10 };
        var href = (await client.PostAsJsonAsync("/experiments", endless, Ct)).Headers.Location!.OriginalString;
        Assert.Equal(HttpStatusCode.TooManyRequests, (await client.PostAsJsonAsync("/experiments", endless, Ct)).StatusCode);

        var deleted = await client.DeleteAsync(href, Ct);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(href, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync(href, Ct)).StatusCode);
        // Its runs ended before DELETE answered: the one running place is free, and no fork became a machine.
        var next = await client.PostAsJsonAsync("/experiments", endless, Ct);
        Assert.Equal(HttpStatusCode.Accepted, next.StatusCode);
        Assert.Single((await Json(await client.GetAsync("/machines", Ct)))["machines"]!.AsArray());
        await client.DeleteAsync(next.Headers.Location, Ct);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the fragmented start, whose template is a machine booted for it, holds the same bound
    public async Task RacingStarts_OnlyLimitsExperimentsRunning_AreAccepted_TheRest429(bool fragmented)
    {
        await using var app = new PageAllocApp(("Limits:ExperimentsRunning", "2"));
        var client = app.CreateClient();
        object endless = fragmented
            ? new { workload = new { kind = "seed-loop", steps = 1_000_000 }, variants = new object[] { new { name = "per-page", strategy = "per-page" } }, fragment = new { freePages = 262144 } }
            : new { workload = new { kind = "seed-loop", steps = 1_000_000 }, variants = new object[] { new { name = "per-page", strategy = "per-page" } } };

        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => client.PostAsJsonAsync("/experiments", endless, Ct)));

        Assert.Equal(2, answers.Count(a => a.StatusCode == HttpStatusCode.Accepted));
        Assert.Equal(6, answers.Count(a => a.StatusCode == HttpStatusCode.TooManyRequests));
        Assert.All(answers.Where(a => a.StatusCode == HttpStatusCode.TooManyRequests), a => Assert.NotNull(a.Headers.RetryAfter));
        foreach (var accepted in answers.Where(a => a.StatusCode == HttpStatusCode.Accepted))
        {
            await client.DeleteAsync(accepted.Headers.Location, Ct);
        }
    }

    [Fact]
    public async Task TheTimeoutCancelsAnExperiment_AndSaysWhy()
    {
        await using var app = new PageAllocApp(("Limits:ExperimentTimeoutSeconds", "1"));
        var client = app.CreateClient();
        var endless = new { workload = new { kind = "seed-loop", steps = 1_000_000 }, variants = new object[] { new { strategy = "per-page" } }, repeat = 10 };
        var href = (await client.PostAsJsonAsync("/experiments", endless, Ct)).Headers.Location!.OriginalString;

        var end = (await Follow(client, href))[^1];

        Assert.Equal("cancelled", (string)end.Data["state"]!);
        Assert.Contains("Limits:ExperimentTimeoutSeconds", (string)end.Data["reason"]!, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, (await client.GetAsync(href + "/timeline.csv", Ct)).StatusCode);
    }

    [Fact]
    public async Task WithKeys_OnlyAnAdministratorOrTheMachinesOwner_StartsOne()
    {
        await using var app = SecurityTests.WithKeys();
        var bob = SecurityTests.As(app, SecurityTests.BobKey);
        var body = new { workload = new { kind = "seed-loop", steps = 100 }, variants = new object[] { new { name = "a" } } };

        Assert.Equal(HttpStatusCode.Forbidden, (await bob.PostAsJsonAsync("/machines/default/experiments", body, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await bob.PostAsJsonAsync("/machines", new { name = "bobs" }, Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await bob.PostAsJsonAsync("/machines/bobs/experiments", body, Ct)).StatusCode);
        var alice = SecurityTests.As(app, SecurityTests.AliceKey);
        Assert.Equal(HttpStatusCode.NotFound, (await alice.GetAsync("/machines/bobs/experiments", Ct)).StatusCode);
    }

    private static string FixtureTrace => Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces", "git-clone-tar.perf-script.txt.gz");

    private static async Task<HttpResponseMessage> Upload(HttpClient client, string name, byte[] body, string type = "application/gzip")
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(type);
        return await client.PostAsync($"/machines/default/experiments/traces?name={name}", content, Ct);
    }

    [Fact]
    public async Task AnUploadedTrace_IsReplayedByAnExperiment_AsTheSameBuiltInTraceIs()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();

        var uploaded = await Upload(client, "mine.v1", await File.ReadAllBytesAsync(FixtureTrace, Ct));

        Assert.Equal(HttpStatusCode.Created, uploaded.StatusCode);
        var kept = await Json(uploaded);
        Assert.Equal(4196, (long)kept["lines"]!);
        Assert.Equal("uploaded", (string)kept["kind"]!);
        var listed = (await Json(await client.GetAsync("/experiments/traces", Ct)))["traces"]!.AsArray().Select(t => (string)t!["name"]!);
        Assert.Equal(["git-clone-tar", "mine.v1"], listed);

        async Task<JsonArray> Timeline(string trace)
        {
            var body = new { workload = new { kind = "trace", trace, rangeEvery = 40 }, variants = new object[] { new { strategy = "per-page" } }, points = 30 };
            var href = (await client.PostAsJsonAsync("/experiments", body, Ct)).Headers.Location!.OriginalString;
            await Follow(client, href);
            var timeline = (await Json(await client.GetAsync(href, Ct)))["variants"]![0]!["runs"]![0]!["timeline"]!.AsArray();
            foreach (var sample in timeline)
            {
                sample!.AsObject().Remove("elapsedNs");
            }
            return timeline;
        }
        Assert.True(JsonNode.DeepEquals(await Timeline("git-clone-tar"), await Timeline("mine.v1")));
    }

    [Fact]
    public async Task AnUploadThatIsNoTrace_OrBadlyNamed_OrTooLarge_IsRefused_AndNothingIsKept()
    {
        await using var app = new PageAllocApp(("Limits:ExperimentTraceBytes", "100000"));
        var client = app.CreateClient();

        Assert.Equal(HttpStatusCode.BadRequest, (await Upload(client, "text", "hello\nworld\n"u8.ToArray(), "application/octet-stream")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Upload(client, "bad", "not gzip"u8.ToArray())).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Upload(client, "git-clone-tar", await File.ReadAllBytesAsync(FixtureTrace, Ct))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Upload(client, "no%20spaces", await File.ReadAllBytesAsync(FixtureTrace, Ct))).StatusCode);
        var big = new byte[200_000];
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await Upload(client, "big", big, "application/octet-stream")).StatusCode);
        Assert.Single((await Json(await client.GetAsync("/experiments/traces", Ct)))["traces"]!.AsArray());
        var unknown = await client.PostAsJsonAsync("/experiments", new { workload = new { kind = "trace", trace = "text" }, variants = new object[] { new { } } }, Ct);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
    }
}
