using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// GET /machines/{m}/snapshot, POST /machines with a snapshot, POST /machines/{m}/fork: a restored
/// machine and a fork answer every later call as the original does, a bad snapshot changes nothing,
/// and a snapshot or fork taken while page calls race is whole.
/// </summary>
public class SnapshotEndpointTests
{
    private const string SnapshotType = "application/vnd.pagealloc.snapshot";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] Texts =
        ["/proc/buddyinfo", "/proc/pagetypeinfo", "/proc/zoneinfo", "/proc/vmstat", "/sys/kernel/debug/extfrag/unusable_index", "/sys/kernel/debug/fail_page_alloc/times"];

    private static async Task<byte[]> Snapshot(HttpClient client, string machine)
    {
        var response = await client.GetAsync($"/machines/{machine}/snapshot", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(SnapshotType, response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsByteArrayAsync(Ct);
    }

    private static Task<HttpResponseMessage> Restore(HttpClient client, byte[] snapshot, string name)
    {
        var content = new ByteArrayContent(snapshot);
        content.Headers.ContentType = new MediaTypeHeaderValue(SnapshotType);
        return client.PostAsync($"/machines?name={name}", content, Ct);
    }

    /// <summary>A history with some of everything: a fragmenter import, allocations of several orders and masks, splits, range frees, a drain, fault injection.</summary>
    private static async Task Shape(HttpClient client, string machine)
    {
        await client.PostOk($"/machines/{machine}/zones/Normal/fragment", new { freePages = 400_000, order = 9, unusableIndex = 0.6, seed = 7 });
        var random = new Random(3);
        for (var i = 0; i < 60; i++)
        {
            var order = random.Next(10);
            var gfp = random.Next(3) switch { 0 => "GFP_KERNEL", 1 => "GFP_HIGHUSER_MOVABLE", _ => "GFP_ATOMIC" };
            var block = await client.PostAsJsonAsync($"/machines/{machine}/zones/Normal/alloc_pages", new { order, gfp, cpu = i % 4 }, Ct);
            if (block.StatusCode == HttpStatusCode.Created && i % 3 == 0 && order > 0)
            {
                var pfn = JsonNode.Parse(await block.Content.ReadAsStringAsync(Ct))!["pfn"]!.GetValue<long>();
                await client.PostOk($"/machines/{machine}/zones/Normal/split_page", new { pfn, order });
                await client.PostOk($"/machines/{machine}/zones/Normal/free_contig_range", new { pfn, nrPages = 1 << order, strategy = i % 2 == 0 ? "chunked" : "per-page", cpu = 1 });
            }
        }
        await client.PostOk($"/machines/{machine}/zones/Normal/drain_pages", new { cpu = 2 });
        var patch = await client.PatchAsJsonAsync($"/machines/{machine}/sys/kernel/debug/fail_page_alloc", new { probability = 30, times = 5, minOrder = 0, ignoreGfpWait = false }, Ct);
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
    }

    /// <summary>The same calls on a machine, answered as text: statuses and bodies, then every /proc text.</summary>
    private static async Task<List<string>> Continue(HttpClient client, string machine)
    {
        var answers = new List<string>();
        var random = new Random(11);
        var held = new List<(long Pfn, int Order)>();
        for (var i = 0; i < 80; i++)
        {
            HttpResponseMessage response;
            if (held.Count > 0 && random.Next(3) == 0)
            {
                var (pfn, order) = held[random.Next(held.Count)];
                held.Remove((pfn, order));
                response = await client.PostAsJsonAsync($"/machines/{machine}/zones/Normal/free_pages", new { pfn, order, cpu = i % 4 }, Ct);
            }
            else
            {
                var order = random.Next(11);
                response = await client.PostAsJsonAsync($"/machines/{machine}/zones/Normal/alloc_pages", new { order, cpu = i % 4 }, Ct);
                if (response.StatusCode == HttpStatusCode.Created)
                {
                    held.Add((JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!["pfn"]!.GetValue<long>(), order));
                }
            }
            var body = System.Text.RegularExpressions.Regex.Replace(await response.Content.ReadAsStringAsync(Ct), "\"traceId\":\"[^\"]*\"", "\"traceId\":\"\""); // per request
            answers.Add($"{(int)response.StatusCode} {body}".Replace($"/machines/{machine}/", "/machines/*/", StringComparison.Ordinal));
        }
        foreach (var text in Texts)
        {
            answers.Add(await client.GetStringAsync($"/machines/{machine}{text}", Ct));
        }
        return answers;
    }

    [Fact]
    public async Task ARestoredSnapshot_AndAFork_AnswerEveryLaterCallAsTheOriginal()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        await client.PostOk("/machines", new { name = "original" }, 201);
        await Shape(client, "original");

        var snapshot = await Snapshot(client, "original");
        Assert.Equal(HttpStatusCode.Created, (await Restore(client, snapshot, "restored")).StatusCode);
        var fork = await client.PostAsJsonAsync("/machines/original/fork", new { name = "forked" }, Ct);
        Assert.Equal(HttpStatusCode.Created, fork.StatusCode);
        Assert.Equal("/machines/forked", fork.Headers.Location?.OriginalString);
        foreach (var text in Texts)
        {
            var original = await client.GetStringAsync($"/machines/original{text}", Ct);
            Assert.Equal(original, await client.GetStringAsync($"/machines/restored{text}", Ct));
            Assert.Equal(original, await client.GetStringAsync($"/machines/forked{text}", Ct));
        }

        var expected = await Continue(client, "original");
        Assert.Equal(expected, await Continue(client, "restored"));
        Assert.Equal(expected, await Continue(client, "forked"));
        Assert.Contains(expected, a => a.StartsWith("507 ", StringComparison.Ordinal)); // fail_page_alloc travelled too
    }

    [Fact]
    public async Task ADamagedOrForeignSnapshot_Is400_AndCreatesNothing()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var snapshot = await Snapshot(client, "default");
        var usedBefore = (await client.GetJson("/machines"))["usedBytes"]!.GetValue<long>();

        var flipped = (byte[])snapshot.Clone();
        flipped[^20] ^= 0x40;
        var otherVersion = (byte[])snapshot.Clone();
        otherVersion[8] ^= 0x02; // the format version follows the 8 magic bytes
        var cases = new (byte[] Body, string Says)[]
        {
            (flipped, "checksum"),
            (snapshot[..(snapshot.Length / 2)], "snapshot"),
            (otherVersion, "version"),
            ("not a snapshot at all"u8.ToArray(), "snapshot"),
            ([], "snapshot"),
        };
        foreach (var (body, says) in cases)
        {
            var response = await Restore(client, body, "bad");
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {text}");
            Assert.Contains("invalid-snapshot", text, StringComparison.Ordinal);
            Assert.Contains(says, text, StringComparison.OrdinalIgnoreCase);
        }
        var list = await client.GetJson("/machines");
        Assert.Equal(1, list["count"]!.GetValue<int>());
        Assert.Equal(usedBefore, list["usedBytes"]!.GetValue<long>());
        Assert.Equal(HttpStatusCode.Created, (await Restore(client, snapshot, "good")).StatusCode);
    }

    [Fact]
    public async Task ARestoreOrForkPastTheBudget_Is507_AndAllocatesNothing()
    {
        await using var app = new PageAllocApp(("Limits:MachineMemoryBytes", (2_097_151L * 16 * 3 / 2).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var client = app.CreateClient();
        var snapshot = await Snapshot(client, "default");

        var restore = await Restore(client, snapshot, "big");
        Assert.Equal(HttpStatusCode.InsufficientStorage, restore.StatusCode);
        Assert.Contains("Limits:MachineMemoryBytes", await restore.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.InsufficientStorage, (await client.PostAsJsonAsync("/machines/default/fork", new { }, Ct)).StatusCode);
        Assert.Equal(1, (await client.GetJson("/machines"))["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task SnapshotsAndForks_TakenWhilePageCallsRace_AreWhole()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var failures = 0;
        var workers = Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            var held = new Queue<(long, int)>();
            while (!stop.IsCancellationRequested)
            {
                var order = (w + held.Count) % 4;
                var block = await client.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order, cpu = w % 4 }, CancellationToken.None);
                if (block.StatusCode == HttpStatusCode.Created)
                {
                    held.Enqueue((JsonNode.Parse(await block.Content.ReadAsStringAsync(CancellationToken.None))!["pfn"]!.GetValue<long>(), order));
                }
                else
                {
                    Interlocked.Increment(ref failures);
                }
                if (held.Count > 16)
                {
                    var (pfn, o) = held.Dequeue();
                    var free = await client.PostAsJsonAsync("/zones/Normal/free_pages", new { pfn, order = o, cpu = (w + 1) % 4 }, CancellationToken.None);
                    if (free.StatusCode != HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref failures);
                    }
                }
            }
        }, CancellationToken.None)).ToList();

        try
        {
        for (var i = 0; i < 6; i++)
        {
            // A restore runs the invariant checker over every page and list: a torn snapshot is refused as inconsistent.
            var restored = await Restore(client, await Snapshot(client, "default"), $"copy-{i}");
            Assert.True(restored.StatusCode == HttpStatusCode.Created, await restored.Content.ReadAsStringAsync(Ct));
            var fork = await client.PostAsJsonAsync("/machines/default/fork", new { name = $"fork-{i}" }, Ct);
            Assert.Equal(HttpStatusCode.Created, fork.StatusCode);
            var again = await Restore(client, await Snapshot(client, $"fork-{i}"), $"fork-copy-{i}");
            Assert.True(again.StatusCode == HttpStatusCode.Created, await again.Content.ReadAsStringAsync(Ct));
            foreach (var name in new[] { $"copy-{i}", $"fork-{i}", $"fork-copy-{i}" })
            {
                Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/machines/{name}", Ct)).StatusCode);
            }
        }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(workers);
        }
        Assert.Equal(0, failures);
    }
}
