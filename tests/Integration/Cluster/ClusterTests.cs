using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;

namespace PageAlloc.Tests.Integration.Cluster;

/// <summary>
/// Machines as grains across three silos (three PageAlloc hosts on one Redis): any silo serves
/// any machine, a machine outlives the graceful stop of its silo, and the catalog's bounds hold
/// for creates and deletes racing through different silos.
/// </summary>
public class ClusterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static object Small(string name) => new
    {
        name,
        config = new { cpus = 2, nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 0x100000, pages = 65536 } } } } },
    };

    private static async Task<string> SiloOf(HttpClient client, string machine) =>
        (await client.GetJson($"/machines/{machine}"))["durability"]!["silo"]!.GetValue<string>();

    [Fact]
    public async Task MachinesSpreadOverTheSilos_AndEverySiloServesEveryMachine()
    {
        await using var cluster = await SiloCluster.StartAsync(3);
        for (var i = 0; i < 3; i++)
        {
            await cluster.Client(i).PostOk("/machines", Small($"m{i}"), 201);
        }
        // Each machine is activated on the silo its create reached.
        var homes = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            homes.Add(await SiloOf(cluster.Client((i + 1) % 3), $"m{i}"));
        }
        Assert.Equal(3, homes.Distinct().Count());

        // A page call through silo 1 for m0 (on silo 0), its free through silo 2.
        var allocated = await cluster.Client(1).PostOk("/machines/m0/zones/Normal/alloc_pages", new { order = 2 }, 201);
        var pfn = allocated["pfn"]!.GetValue<long>();
        await cluster.Client(2).PostOk("/machines/m0/zones/Normal/free_pages", new { pfn, order = 2 });
        var texts = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => cluster.Client(i).GetStringAsync("/machines/m0/proc/pagetypeinfo", Ct)));
        Assert.Single(texts.Distinct());

        // The list is the cluster's, from any silo.
        var listed = (await cluster.Client(2).GetJson("/machines"))["machines"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(["default", "m0", "m1", "m2"], listed);
        // An unknown machine is unknown through every silo.
        Assert.Equal(HttpStatusCode.NotFound, (await cluster.Client(1).GetAsync("/machines/nobody/stats", Ct)).StatusCode);
    }

    [Fact]
    public async Task ASiloStoppedGracefully_ItsMachinesContinueOnAnother_WithByteIdenticalProcText()
    {
        await using var cluster = await SiloCluster.StartAsync(3);
        await cluster.Client(0).PostOk("/machines", Small("moving"), 201);
        var client = cluster.Client(1);
        var held = new List<long>();
        for (var order = 0; order < 6; order++)
        {
            held.Add((await client.PostOk("/machines/moving/zones/Normal/alloc_pages", new { order }, 201))["pfn"]!.GetValue<long>());
        }
        string[] files = ["/proc/buddyinfo", "/proc/pagetypeinfo", "/proc/zoneinfo", "/proc/vmstat"];
        var before = await Task.WhenAll(files.Select(f => client.GetStringAsync("/machines/moving" + f, Ct)));
        var home = await SiloOf(client, "moving");
        var operations = (await client.GetJson("/machines/moving"))["durability"]!["operations"]!.GetValue<long>();

        await cluster.StopAsync(0);

        var after = await Task.WhenAll(files.Select(f => client.GetStringAsync("/machines/moving" + f, Ct)));
        Assert.Equal(before, after);
        var moved = (await client.GetJson("/machines/moving"))["durability"]!;
        Assert.NotEqual(home, moved["silo"]!.GetValue<string>());
        Assert.True(moved["resumedFrom"]!["clean"]!.GetValue<bool>(), moved.ToJsonString());
        Assert.Equal(operations, moved["resumedFrom"]!["operations"]!.GetValue<long>());
        Assert.Equal(0, moved["operationsSinceSnapshot"]!.GetValue<long>());
        // It goes on where it was: the pages it held are still held, and free as they would have.
        for (var order = 0; order < 6; order++)
        {
            await client.PostOk("/machines/moving/zones/Normal/free_pages", new { pfn = held[order], order });
        }
    }

    [Fact]
    public async Task CreatesAndDeletesRacingThroughEverySilo_KeepTheCatalogsBounds()
    {
        await using var cluster = await SiloCluster.StartAsync(3, ("Limits:MaxMachines", "6"));
        var clients = Enumerable.Range(0, 3).Select(cluster.Client).ToArray();

        // 24 creates of distinct names through three silos at once: default plus five fit.
        var creates = await Task.WhenAll(Enumerable.Range(0, 24).Select(i =>
            clients[i % 3].PostAsJsonAsync("/machines", Small($"race-{i}"), Ct)));
        Assert.Equal(5, creates.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(19, creates.Count(r => (int)r.StatusCode == 507));
        var listing = await clients[0].GetJson("/machines");
        Assert.Equal(6, listing["count"]!.GetValue<int>());

        // One name taken by three silos at once: one 201, the others 409 (after a delete makes room).
        var made = creates.Select((r, i) => (r, i)).Where(x => x.r.StatusCode == HttpStatusCode.Created).Select(x => $"race-{x.i}").ToList();
        Assert.Equal(HttpStatusCode.NoContent, (await clients[1].DeleteAsync($"/machines/{made[0]}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await clients[2].DeleteAsync($"/machines/{made[1]}", Ct)).StatusCode);
        var same = await Task.WhenAll(clients.Select(c => c.PostAsJsonAsync("/machines", Small("contested"), Ct)));
        Assert.Equal(1, same.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(2, same.Count(r => r.StatusCode == HttpStatusCode.Conflict));

        // Three silos delete one machine at once: one 204, the others 404.
        var deletes = await Task.WhenAll(clients.Select(c => c.DeleteAsync("/machines/contested", Ct)));
        Assert.Equal(1, deletes.Count(r => r.StatusCode == HttpStatusCode.NoContent));
        Assert.Equal(2, deletes.Count(r => r.StatusCode == HttpStatusCode.NotFound));
        foreach (var client in clients)
        {
            Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/machines/contested/stats", Ct)).StatusCode);
        }
        Assert.Equal(4, (await clients[2].GetJson("/machines"))["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task PageCallsThroughTheGrainPath_RunSideBySide_SoTheMachinesLocksContend()
    {
        // Every request through a grain call, even on its own silo (Orleans:LocalShortcut false).
        await using var app = new PageAllocApp(("Orleans:LocalShortcut", "false"));
        var client = app.CreateClient();
        // Eight clients on one simulated cpu, so they share its pcp lock: run side by side, they contend
        // for it now and then (critical sections are short, so a round may see none: up to ten rounds);
        // run one at a time, as a grain turn per call would run them, they never could.
        var contended = 0L;
        JsonArray locks = [];
        for (var round = 0; round < 10 && contended == 0; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, 8).Select(async worker =>
            {
                for (var i = 0; i < 150; i++)
                {
                    var pfn = (await client.PostOk("/zones/Normal/alloc_pages", new { order = 0, cpu = 0 }, 201))["pfn"]!.GetValue<long>();
                    await client.PostOk("/zones/Normal/free_pages", new { pfn, order = 0, cpu = 0 });
                }
            }));
            locks = (await client.GetJson("/zones/Normal/stats"))["locks"]!.AsArray();
            contended = locks.Sum(l => l!["contended"]!.GetValue<long>());
        }
        Assert.True(contended > 0, "no lock was ever contended in ten rounds: the grain path ran the page calls one at a time. " + locks.ToJsonString());
    }

    [Fact]
    public async Task JustAfterTheClusterStarts_DefaultsSnapshotIsWritten_ThroughEverySilo()
    {
        // Silos joining one by one may activate default twice while their view of the cluster settles;
        // Orleans then ends one copy. That copy used to write its state on the way out, after which
        // every snapshot of the surviving default failed (a version conflict) and was only logged.
        await using var cluster = await SiloCluster.StartAsync(2);
        for (var i = 0; i < 2; i++)
        {
            var answer = await cluster.Client(i).PostOk("/machines/default/checkpoint", new { });
            var snapshotAt = answer["durability"]!["snapshotAt"];
            Assert.True(snapshotAt is not null, $"through silo {i}: no snapshot was written: {answer["durability"]!.ToJsonString()}");
        }
        await cluster.Client(0).PostOk("/machines/default/zones/Normal/alloc_pages", new { order = 0 }, 201);
        var after = await cluster.Client(1).PostOk("/machines/default/checkpoint", new { });
        Assert.Equal(0, after["durability"]!["operationsSinceSnapshot"]!.GetValue<long>());
    }

    [Fact]
    public async Task ACheckpointThatCannotBeWritten_Is503_AndTheRecoveryPointStays()
    {
        await using var cluster = await SiloCluster.StartAsync(1);
        var client = cluster.Client(0);
        await client.PostOk("/machines", Small("kept"), 201);
        var written = (await client.PostOk("/machines/kept/checkpoint", new { }))["durability"]!["snapshotAt"]!.GetValue<string>();
        await client.PostOk("/machines/kept/zones/Normal/alloc_pages", new { order = 0 }, 201);

        await cluster.Redis.PauseAsync();
        HttpResponseMessage refused;
        try
        {
            refused = await client.PostAsync("/machines/kept/checkpoint", JsonContent.Create(new { }), Ct);
        }
        finally
        {
            await cluster.Redis.ResumeAsync();
        }

        var text = await refused.Content.ReadAsStringAsync(Ct);
        Assert.True(refused.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)refused.StatusCode}: {text}");
        Assert.Equal("machine-unavailable", JsonNode.Parse(text)!["kind"]!.GetValue<string>());
        Assert.Contains(written, text, StringComparison.Ordinal); // the recovery point it stays at
        var durability = (await client.GetJson("/machines/kept"))["durability"]!;
        Assert.Equal(written, durability["snapshotAt"]!.GetValue<string>());
        Assert.Equal(1, durability["operationsSinceSnapshot"]!.GetValue<long>());

        // The write that timed out was queued in Redis and lands once it runs again, under a version
        // the grain never learnt. The next checkpoint must still be written (it used to fail with a
        // version conflict, and so did every later snapshot of the machine).
        await client.PostOk("/machines/kept/zones/Normal/alloc_pages", new { order = 0 }, 201);
        var next = await client.PostAsync("/machines/kept/checkpoint", JsonContent.Create(new { }), Ct);
        var nextText = await next.Content.ReadAsStringAsync(Ct);
        Assert.True(next.StatusCode == HttpStatusCode.OK, $"the checkpoint after Redis came back: {(int)next.StatusCode}: {nextText}");
        var after = JsonNode.Parse(nextText)!["durability"]!;
        Assert.Equal(0, after["operationsSinceSnapshot"]!.GetValue<long>());
        Assert.Equal(2, after["snapshotOperations"]!.GetValue<long>());
    }

    [Fact]
    public async Task ACreateWhileRedisIsDown_Is503_AndCreatesWorkOnceItIsBack()
    {
        await using var cluster = await SiloCluster.StartAsync(1);
        var client = cluster.Client(0);
        await client.PostOk("/machines", Small("before"), 201);

        await cluster.Redis.PauseAsync();
        HttpResponseMessage refused;
        try
        {
            refused = await client.PostAsync("/machines", JsonContent.Create(Small("lost")), Ct);
        }
        finally
        {
            await cluster.Redis.ResumeAsync();
        }
        var text = await refused.Content.ReadAsStringAsync(Ct);
        Assert.True(refused.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)refused.StatusCode}: {text}");
        Assert.Equal("machine-unavailable", JsonNode.Parse(text)!["kind"]!.GetValue<string>());
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());

        // The catalog's write that timed out lands late, under a version the catalog never learnt:
        // the next creates and deletes must still be written (they failed with a conflict, for good).
        await client.PostOk("/machines", Small("after"), 201);
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/machines/before", Ct)).StatusCode);
        var names = (await client.GetJson("/machines"))["machines"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(["default", "after"], names);
    }

    [Fact]
    public async Task EventsOfAMachineOnAnotherSilo_AreRelayed_ByteForByte_AndTheRelayEndsWithItsReader()
    {
        await using var cluster = await SiloCluster.StartAsync(2);
        await cluster.Client(0).PostOk("/machines", Small("watched"), 201);
        var home = cluster.Silos[0]!.Services.GetRequiredService<PageAlloc.Api.Cluster.StreamRelays>();
        var homeStreams = cluster.Silos[0]!.Services.GetRequiredService<PageAlloc.Api.Endpoints.EventStreams>();
        const string Events = "/machines/watched/events?events=mm_page_alloc,mm_page_free&limit=6";

        // The same stream read on the machine's silo and relayed through the other, side by side.
        var local = await cluster.Client(0).GetAsync(Events, HttpCompletionOption.ResponseHeadersRead, Ct);
        var relayed = await cluster.Client(1).GetAsync(Events, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, relayed.StatusCode);
        Assert.Equal("text/event-stream", relayed.Content.Headers.ContentType?.MediaType);
        Assert.Equal(1, home.Open);
        Assert.Equal(2, homeStreams.Open); // the relayed stream counts against Limits:EventListeners where it runs
        for (var i = 0; i < 3; i++)
        {
            var pfn = (await cluster.Client(1).PostOk("/machines/watched/zones/Normal/alloc_pages", new { order = 1 }, 201))["pfn"]!.GetValue<long>();
            await cluster.Client(0).PostOk("/machines/watched/zones/Normal/free_pages", new { pfn, order = 1 });
        }
        var localText = await local.Content.ReadAsStringAsync(Ct);
        var relayedText = await relayed.Content.ReadAsStringAsync(Ct);
        Assert.Equal(6, relayedText.Split('\n').Count(line => line.StartsWith("event: mm_page_", StringComparison.Ordinal)));
        Assert.Equal(localText, relayedText);
        await Until(() => home.Open == 0 && homeStreams.Open == 0, "the ended stream's relay and lease are given back");

        // A refusal comes back as the machine's silo answered it.
        var refused = await cluster.Client(1).GetAsync("/machines/watched/events?zone=Nowhere", Ct);
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal("unknown-zone", JsonNode.Parse(await refused.Content.ReadAsStringAsync(Ct))!["kind"]!.GetValue<string>());
        Assert.Equal(0, home.Open);

        // A reader that goes away mid-stream ends the stream on the machine's silo too.
        var open = await cluster.Client(1).GetAsync("/machines/watched/events", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        Assert.Equal(1, home.Open);
        open.Dispose();
        await Until(() => home.Open == 0 && homeStreams.Open == 0, "the relay of a reader gone is ended");
    }

    [Fact]
    public async Task AnExperimentOnAMachineOnAnotherSilo_IsStartedFollowedReadAndDeleted_ThroughEitherSilo()
    {
        await using var cluster = await SiloCluster.StartAsync(2);
        await cluster.Client(0).PostOk("/machines", Small("lab"), 201);
        var body = new
        {
            workload = new { kind = "mix", steps = 3000, rangeEvery = 30 },
            variants = new object[] { new { name = "per-page", strategy = "per-page" }, new { name = "chunked", strategy = "chunked" } },
        };

        // Started through the silo that does not hold the machine: it runs where the machine is.
        var started = await cluster.Client(1).PostAsJsonAsync("/machines/lab/experiments", body, Ct);
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, await started.Content.ReadAsStringAsync(Ct));
        var href = started.Headers.Location!.OriginalString;
        var home = cluster.Silos[0]!.Services.GetRequiredService<PageAlloc.Api.Experiments.ExperimentRegistry>();
        Assert.Single(home.Of("lab"));

        // Its progress stream, relayed through the other silo, ends with the experiment.
        var stream = await cluster.Client(1).GetStringAsync(href + "/progress", Ct);
        Assert.Contains("event: end", stream, StringComparison.Ordinal);
        Assert.Contains("\"state\":\"done\"", stream, StringComparison.Ordinal);

        // Either silo answers the same result.
        var results = await Task.WhenAll(cluster.Client(0).GetStringAsync(href, Ct), cluster.Client(1).GetStringAsync(href, Ct));
        Assert.Equal(results[0], results[1]);
        Assert.Equal(2, JsonNode.Parse(results[1])!["variants"]!.AsArray().Count);

        Assert.Equal(HttpStatusCode.NoContent, (await cluster.Client(1).DeleteAsync(href, Ct)).StatusCode);
        Assert.Empty(home.Of("lab"));
        Assert.Equal(HttpStatusCode.NotFound, (await cluster.Client(0).GetAsync(href, Ct)).StatusCode);
    }

    [Fact]
    public async Task ReadersRacingThroughBothSilos_EachGetTheWholeStream_AndThePlacesComeBack()
    {
        await using var cluster = await SiloCluster.StartAsync(2);
        await cluster.Client(0).PostOk("/machines", Small("watched"), 201);
        var home = cluster.Silos[0]!.Services.GetRequiredService<PageAlloc.Api.Cluster.StreamRelays>();
        var homeStreams = cluster.Silos[0]!.Services.GetRequiredService<PageAlloc.Api.Endpoints.EventStreams>();
        const string Events = "/machines/watched/events?events=mm_page_alloc,mm_page_free&limit=20";

        // Four readers opened at once (one client's most, Limits:EventListenersPerClient), three
        // relayed through silo 1 and one on the machine's own silo.
        var opening = Enumerable.Range(0, 4).Select(i => cluster.Client(i < 3 ? 1 : 0).GetAsync(Events, HttpCompletionOption.ResponseHeadersRead, Ct));
        var readers = await Task.WhenAll(opening);
        Assert.All(readers, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(3, home.Open);
        Assert.Equal(4, homeStreams.Open);

        // Ten alloc/free pairs, from both silos at once.
        await Task.WhenAll(Enumerable.Range(0, 2).Select(async side =>
        {
            for (var i = 0; i < 5; i++)
            {
                var pfn = (await cluster.Client(side).PostOk("/machines/watched/zones/Normal/alloc_pages", new { order = 0 }, 201))["pfn"]!.GetValue<long>();
                await cluster.Client(1 - side).PostOk("/machines/watched/zones/Normal/free_pages", new { pfn, order = 0 });
            }
        }));
        var streams = (await Task.WhenAll(readers.Select(r => r.Content.ReadAsStringAsync(Ct)))).Select(SseEvents).ToList();
        foreach (var events in streams)
        {
            Assert.Equal(20, events.Count);
            // Relayed or not, every reader saw the same events, and each page's alloc and free in the
            // order they happened. (Two calls at once on different cpus may reach two readers in either
            // order: each stream has its own buffer, as a trace instance has; docs/http-api.md.)
            Assert.Equal(streams[3].Order(StringComparer.Ordinal), events.Order(StringComparer.Ordinal));
            Assert.Equal(PerPage(streams[3]), PerPage(events));
        }
        await Until(() => home.Open == 0 && homeStreams.Open == 0, "every ended stream's relay and lease are given back");
    }

    /// <summary>An SSE stream's events, each as "name data".</summary>
    private static List<string> SseEvents(string sse) =>
        [.. sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.Replace("event: ", "", StringComparison.Ordinal).Replace("\ndata: ", " ", StringComparison.Ordinal))];

    /// <summary>The events in each page's order, page by page ("page=0x..." is each event's first field).</summary>
    private static string PerPage(List<string> events) =>
        string.Join("; ", events.GroupBy(e => e.Split(' ')[1]).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => string.Join(", ", g)));

    private static async Task Until(Func<bool> condition, string what)
    {
        for (var waited = 0; !condition(); waited += 50)
        {
            Assert.True(waited < 10_000, what + " within 10 s");
            await Task.Delay(50, Ct);
        }
    }
}
