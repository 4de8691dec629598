using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace PageAlloc.Tests.Integration;

/// <summary>Runs alone (after the parallel classes): these tests measure the process's heap around one request.</summary>
[CollectionDefinition(nameof(HostileBodyTests), DisableParallelization = true)]
public sealed class HostileBodyCollection;

/// <summary>
/// Bodies built to hurt: a gzip bomb, one endless line, numbers that overflow, a timeline of one
/// snapshot per event. Each is refused (or bounded) quickly, and the memory a refused request took
/// comes back.
/// </summary>
[Collection(nameof(HostileBodyTests))]
public class HostileBodyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>gzip of <paramref name="bytes"/> bytes of <paramref name="fill"/>, a newline after every <paramref name="lineBytes"/> (1 GiB of zeros is about 1 MB).</summary>
    private static byte[] GzipOf(long bytes, byte fill, int lineBytes = 0)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var block = new byte[1 << 20];
            Array.Fill(block, fill);
            for (var i = lineBytes; lineBytes > 0 && i < block.Length; i += lineBytes + 1)
            {
                block[i] = (byte)'\n';
            }
            for (long written = 0; written < bytes; written += block.Length)
            {
                gzip.Write(block, 0, (int)Math.Min(block.Length, bytes - written));
            }
        }
        return output.ToArray();
    }

    private static readonly Lazy<byte[]> GigabyteOfZeros = new(() => GzipOf(1L << 30, 0));

    private static async Task<HttpResponseMessage> Post(PageAllocApp app, string path, byte[] body, string contentType)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return await app.CreateClient().PostAsync(path, content, Ct);
    }

    /// <summary>
    /// The request's answer, the most heap the process held while it ran (sampled), and what it
    /// still holds after a full collection, both beside what it held before.
    /// </summary>
    private static async Task<(HttpResponseMessage Response, string Body, long PeakGrowth, long KeptGrowth, TimeSpan Took)> Measured(Func<Task<HttpResponseMessage>> request)
    {
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var peak = before;
        using var done = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(false));
                await Task.Delay(5, CancellationToken.None);
            }
        }, CancellationToken.None);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var response = await request();
        var body = await response.Content.ReadAsStringAsync(Ct);
        var took = watch.Elapsed;
        await done.CancelAsync();
        await sampler;
        peak = Math.Max(peak, GC.GetTotalMemory(false));
        var after = GC.GetTotalMemory(forceFullCollection: true);
        TestContext.Current.TestOutputHelper?.WriteLine($"{(int)response.StatusCode} in {took.TotalSeconds:F2} s; heap before {before / MiB} MiB, peak +{(peak - before) / MiB} MiB, after a full GC +{(after - before) / MiB} MiB");
        return (response, body, peak - before, after - before, took);
    }

    private const long MiB = 1 << 20;

    private static void AssertTooLarge(HttpResponseMessage response, string body, string limit)
    {
        Assert.True(response.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)response.StatusCode} {body[..Math.Min(body.Length, 2000)]}");
        var problem = JsonNode.Parse(body)!;
        Assert.Equal("body-too-large", (string)problem["kind"]!);
        Assert.Contains(limit, (string)problem["detail"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AGzipBomb_ToReplay_Is413_Quickly_AndItsMemoryComesBack()
    {
        var bomb = GigabyteOfZeros.Value; // 1 GiB of zeros: one line, never ending
        Assert.InRange(bomb.Length, 1, 8 * MiB);
        await using var app = new PageAllocApp();

        var (response, body, peak, kept, took) = await Measured(() => Post(app, "/replay", bomb, "application/gzip"));

        AssertTooLarge(response, body, "Limits:BodyLineBytes");
        Assert.True(took < TimeSpan.FromSeconds(5), $"took {took}");
        Assert.True(peak < 512 * MiB, $"the heap grew by {peak / MiB} MiB while the bomb was read");
        Assert.True(kept < 200 * MiB, $"the heap kept {kept / MiB} MiB after the bomb");
    }

    [Fact]
    public async Task AGzipBombOfShortLines_StopsAtTheDecompressedLimit_With413()
    {
        // 128 MiB of lines of 255 bytes: every line is short, so only the decompressed bound stops it (here 16 MiB).
        var bomb = GzipOf(128 * MiB, (byte)'x', lineBytes: 255);
        await using var app = new PageAllocApp(("Limits:ReplayDecompressedBytes", (16 * MiB).ToString(System.Globalization.CultureInfo.InvariantCulture)));

        var (response, body, peak, kept, took) = await Measured(() => Post(app, "/replay", bomb, "application/gzip"));

        AssertTooLarge(response, body, "Limits:ReplayDecompressedBytes");
        Assert.Contains("16777216", body, StringComparison.Ordinal);
        Assert.True(took < TimeSpan.FromSeconds(5), $"took {took}");
        Assert.True(kept < 200 * MiB, $"the heap kept {kept / MiB} MiB");
        Assert.True(peak < 512 * MiB, $"the heap grew by {peak / MiB} MiB");
    }

    [Fact]
    public async Task OneLongLine_ToReplay_Is413_AndItsMemoryComesBack()
    {
        var line = new byte[50 * MiB];
        Array.Fill(line, (byte)'a');
        await using var app = new PageAllocApp();

        var (response, body, peak, kept, took) = await Measured(() => Post(app, "/replay", line, "application/octet-stream"));

        AssertTooLarge(response, body, "Limits:BodyLineBytes");
        Assert.True(took < TimeSpan.FromSeconds(5), $"took {took}");
        // The body itself (50 MiB) is the test's; the service's reading of it adds little.
        Assert.True(peak < 50 * MiB + 256 * MiB, $"the heap grew by {peak / MiB} MiB");
        Assert.True(kept < 50 * MiB + 200 * MiB, $"the heap kept {kept / MiB} MiB");
    }

    [Fact]
    public async Task OneLongLine_ToImport_Is413()
    {
        var line = Encoding.ASCII.GetBytes("Node 0, zone   Normal " + new string('1', 1 << 20));
        await using var app = new PageAllocApp();

        var response = await Post(app, "/zones/Normal/import", line, "application/octet-stream");

        AssertTooLarge(response, await response.Content.ReadAsStringAsync(Ct), "Limits:BodyLineBytes");
    }

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "proc", name));

    private static string TracePath => Path.Combine(AppContext.BaseDirectory, "Fixtures", "traces", "git-clone-tar.perf-script.txt.gz");

    [Fact]
    public async Task A20DigitManagedCount_ToImport_Is400_NamingTheValue()
    {
        await using var app = new PageAllocApp();
        var zoneinfo = Fixture("zoneinfo.txt").Replace("managed  1245184", "managed  99999999999999999999", StringComparison.Ordinal);
        Assert.Contains("99999999999999999999", zoneinfo, StringComparison.Ordinal);

        var response = await Post(app, "/zones/Normal/import", Encoding.ASCII.GetBytes(zoneinfo + Fixture("pagetypeinfo.txt")), "application/octet-stream");

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        Assert.Equal("invalid-import", (string)JsonNode.Parse(body)!["kind"]!);
        Assert.Contains("99999999999999999999", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("pagetypeinfo.txt")]
    [InlineData("buddyinfo.txt")]
    public async Task A20DigitFreeListCount_ToImport_Is400_NamingTheValue(string file)
    {
        await using var app = new PageAllocApp(("Machine:Nodes:0:Zones:2:Pages", "1245184"));
        var text = Fixture(file);
        var row = text.Split('\n').First(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^Node\s+0, zone\s+Normal(, type\s+\w+)?(\s+\d+){11}\s*$"));
        var numbers = row.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var hostile = row[..row.LastIndexOf(numbers[^1], StringComparison.Ordinal)] + "18446744073709551616";
        var response = await Post(app, "/zones/Normal/import", Encoding.ASCII.GetBytes(text.Replace(row, hostile, StringComparison.Ordinal)), "application/octet-stream");

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        Assert.Equal("invalid-import", (string)JsonNode.Parse(body)!["kind"]!);
        Assert.Contains("18446744073709551616", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFreeListCountNoZoneCanHold_ToImport_Is400_NotAnOverflow()
    {
        // Fits a long, but count << order does not: 2^62 blocks of order 10.
        await using var app = new PageAllocApp();
        var text = Fixture("buddyinfo.txt");
        var row = text.Split('\n').First(l => l.StartsWith("Node 0, zone   Normal", StringComparison.Ordinal));
        var numbers = row.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var hostile = row[..row.LastIndexOf(numbers[^1], StringComparison.Ordinal)] + "4611686018427387904";

        var response = await Post(app, "/zones/Normal/import", Encoding.ASCII.GetBytes(hostile + "\n"), "application/octet-stream");

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        Assert.Contains("4611686018427387904", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AZoneinfoLargerThanTheMemoryBudget_IsRefused_AndChangesNothing()
    {
        // managed 300000000 pages: a 1.1 TiB zone, 4.5 GB of page state, past the default 4 GiB budget.
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var before = await client.StatsWithoutLocks();
        var zoneinfo = Fixture("zoneinfo.txt").Replace("managed  1245184", "managed  300000000", StringComparison.Ordinal);

        var response = await Post(app, "/zones/Normal/import", Encoding.ASCII.GetBytes(zoneinfo + Fixture("pagetypeinfo.txt")), "application/octet-stream");

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode} {body}");
        Assert.Equal("import-does-not-fit", (string)JsonNode.Parse(body)!["kind"]!);
        Assert.Contains("Limits:MachineMemoryBytes", body, StringComparison.Ordinal);
        Assert.Equal(before, await client.StatsWithoutLocks());
    }

    [Fact]
    public async Task AFragmentTargetLargerThanAnyZone_IsRefusedQuickly()
    {
        await using var app = new PageAllocApp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));

        var response = await app.CreateClient().PostAsync("/zones/Normal/fragment",
            new StringContent("""{"freePages":9223372036854775807,"order":10,"unusableIndex":1}""", Encoding.UTF8, "application/json"), timeout.Token);

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode} {body}");
        Assert.Equal("import-does-not-fit", (string)JsonNode.Parse(body)!["kind"]!);
        Assert.Contains("9223372036854775807", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[99999999999]", "0x1")]
    [InlineData("[000]", "0xfffffffffffffffff")]
    [InlineData("[000]", "0x7fffffffffffffff")] // a long, but past the largest pfn (2^40)
    public async Task ATraceLineWithANumberThatOverflows_IsNotAnEvent_NotA500(string cpu, string pfn)
    {
        await using var app = new PageAllocApp();
        var line = $"perf 1 {cpu}  1.000000: kmem:mm_page_alloc: page={pfn} pfn={pfn} order=0 migratetype=0 gfp_flags=GFP_KERNEL\n";

        var response = await Post(app, "/replay", Encoding.ASCII.GetBytes(line), "application/octet-stream");

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        Assert.Equal("not-a-trace", (string)JsonNode.Parse(body)!["kind"]!);
    }

    [Fact]
    public async Task ATimelineOfEveryEvent_IsThinnedToTheLimit_AndSaysItsInterval()
    {
        await using var app = new PageAllocApp(("Limits:ReplayTimelinePoints", "100"));
        var trace = await File.ReadAllBytesAsync(TracePath, Ct); // 4196 events

        var response = await Post(app, "/replay?timelineEvery=1", trace, "application/gzip");

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {body[..Math.Min(2000, body.Length)]}");
        var result = JsonNode.Parse(body)!;
        var timeline = result["timeline"]!.AsArray();
        // 4196 events at most 100 points: every 1, 2, ... 64 events (65 points), and the final one.
        Assert.Equal(64, (long)result["timelineEvery"]!);
        Assert.Equal(4196 / 64 + 1, timeline.Count);
        Assert.All(timeline.SkipLast(1), p => Assert.Equal(0, (long)p!["events"]! % 64));
        Assert.Equal(4196, (long)timeline[^1]!["events"]!);
    }

    [Fact]
    public async Task ATimelineOfEveryEvent_WithTheDefaults_StaysSmall()
    {
        await using var app = new PageAllocApp();
        var trace = await File.ReadAllBytesAsync(TracePath, Ct);

        var response = await Post(app, "/replay?timelineEvery=1", trace, "application/gzip");

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = JsonNode.Parse(body)!;
        var points = result["timeline"]!.AsArray().Count;
        TestContext.Current.TestOutputHelper?.WriteLine($"{points} points every {result["timelineEvery"]} events, {body.Length} bytes, {result["timeline"]!.ToJsonString().Length / points} bytes a point");
        Assert.InRange(points, 2, 4097);
        Assert.InRange(body.Length, 1, 4 * MiB);
    }

    [Fact]
    public async Task TheLargestDocumentedBulkFree_FitsTheBodyLimit()
    {
        // 2^20 pfns of 7 digits (the Normal zone, 1048576..2097151, all free: 409 page-free), with every member.
        await using var app = PageAllocApp.OnKestrel();
        using var client = new HttpClient { BaseAddress = app.Address };
        var pfns = string.Join(",", Enumerable.Range(0, 1 << 20).Select(i => 1048576 + i));
        var body = $$"""{"pfns":[{{pfns}}],"strategy":"per-page","cpu":0}""";
        Assert.True(body.Length > 8 << 20, $"{body.Length}");

        var response = await client.PostAsync("/zones/Normal/free_pages_bulk", new StringContent(body, Encoding.UTF8, "application/json"), Ct);

        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode} {text}");
        Assert.Equal("page-free", (string)JsonNode.Parse(text)!["kind"]!);
    }
}
