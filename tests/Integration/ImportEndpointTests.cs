using System.Net;
using System.Net.Http.Headers;

namespace PageAlloc.Tests.Integration;

/// <summary>POST /zones/{zone}/import: a real machine's /proc/pagetypeinfo in, the same numbers out of /proc.</summary>
public class ImportEndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "proc", name));

    /// <summary>The fixture machine's Normal zone: 1245184 managed pages (its /proc/zoneinfo).</summary>
    private static PageAllocApp LikeTheFixturesMachine() => new(("Machine:Nodes:0:Zones:2:Pages", "1245184"));

    private static Task<HttpResponseMessage> Import(HttpClient client, string zone, string body)
    {
        var content = new StringContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/octet-stream");
        return client.PostAsync($"/zones/{zone}/import?seed=2", content, Ct);
    }

    [Fact]
    public async Task ARealPagetypeinfo_Imports_AndProcPrintsItBack()
    {
        await using var app = LikeTheFixturesMachine();
        var client = app.CreateClient();
        var real = Fixture("pagetypeinfo.txt");

        var response = await Import(client, "Normal", real);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var printed = await client.GetStringAsync("/proc/pagetypeinfo", Ct);
        foreach (var row in real.Split('\n').Where(l => l.Contains("zone   Normal", StringComparison.Ordinal)))
        {
            Assert.Contains(row + "\n", printed, StringComparison.Ordinal);
        }
        // buddyinfo is the free-count rows summed over migratetypes, as the kernel's free_area[order].nr_free is.
        var sums = Enumerable.Range(0, 11).Select(order => real.Split('\n')
            .Where(l => l.Contains("zone   Normal, type", StringComparison.Ordinal))
            .Sum(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^(11 - order)], System.Globalization.CultureInfo.InvariantCulture)));
        var buddyinfo = (await client.GetStringAsync("/proc/buddyinfo", Ct)).Split('\n').Single(l => l.Contains("Normal", StringComparison.Ordinal));
        Assert.Equal(sums, buddyinfo.Split(' ', StringSplitOptions.RemoveEmptyEntries)[4..].Select(n => long.Parse(n, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task WithTheZoneinfo_TheDefaultMachinesZoneTakesTheRealSize_UntilTheNextReset()
    {
        await using var app = new PageAllocApp(); // Normal is 1048576 pages here; the real one manages 1245184
        var client = app.CreateClient();
        var body = Fixture("zoneinfo.txt") + Fixture("pagetypeinfo.txt");

        var response = await Import(client, "Normal", body);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var api = app.Api();
        Assert.Equal(1245184, (await api.GetZoneAsync("default", "Normal", Ct)).ManagedPages);
        Assert.Contains("Node 0, zone   Normal           74         2254          104            0            0 ",
            await client.GetStringAsync("/proc/pagetypeinfo", Ct), StringComparison.Ordinal);
        await api.ResetAsync("default", Ct);
        Assert.Equal(1048576, (await api.GetZoneAsync("default", "Normal", Ct)).ManagedPages);
    }

    [Fact]
    public void TheZoneinfoParser_ReadsManagedPages()
    {
        Assert.Equal(1245184, PageAlloc.Domain.Import.ZoneInfoSize.ManagedPages(Fixture("zoneinfo.txt"), "Normal"));
        Assert.Equal(3840, PageAlloc.Domain.Import.ZoneInfoSize.ManagedPages(Fixture("zoneinfo.txt"), "DMA"));
        Assert.Null(PageAlloc.Domain.Import.ZoneInfoSize.ManagedPages(Fixture("zoneinfo.txt"), "Highmem"));
    }

    [Fact]
    public async Task CountsThatDoNotFit_Are409_AndChangeNothing_AndSayHowToSendTheZoneinfo()
    {
        await using var app = new PageAllocApp(); // the default Normal zone: 2048 pageblocks, the real one has 2432
        var client = app.CreateClient();
        await client.PostOk("/zones/Normal/alloc_pages", new { order = 3 }, 201);
        var before = await client.StatsWithoutLocks();

        var response = await Import(client, "Normal", Fixture("pagetypeinfo.txt"));

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var problem = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
        Assert.Equal("import-does-not-fit", problem["kind"]?.GetValue<string>());
        var detail = problem["detail"]!.GetValue<string>();
        Assert.Contains("pageblocks do not fit zone Normal", detail, StringComparison.Ordinal);
        Assert.Contains("cat /proc/zoneinfo /proc/pagetypeinfo | curl", detail, StringComparison.Ordinal);
        Assert.Contains("--data-binary @-", detail, StringComparison.Ordinal);
        Assert.Equal(before, await client.StatsWithoutLocks());
    }

    [Fact]
    public async Task CountsThatDoNotFit_TheZoneinfosSizeEither_DoNotAskForTheZoneinfoAgain()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        // The zoneinfo claims the default size (1048576 pages, 2048 pageblocks); the pagetypeinfo has 2432 pageblocks.
        var zoneinfo = Fixture("zoneinfo.txt").Replace("managed  1245184", "managed  1048576", StringComparison.Ordinal);
        Assert.Equal(1048576, PageAlloc.Domain.Import.ZoneInfoSize.ManagedPages(zoneinfo, "Normal"));

        var response = await Import(client, "Normal", zoneinfo + Fixture("pagetypeinfo.txt"));

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var detail = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!["detail"]!.GetValue<string>();
        Assert.Contains("pageblocks do not fit zone Normal", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("/proc/zoneinfo", detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// docs/replay.md's step 0 works on any machine: its command sends /proc/zoneinfo with
    /// /proc/pagetypeinfo, and that body (the fixtures, in the command's order) imports into a default
    /// machine's Normal zone, which is smaller than the fixtures' machine's.
    /// </summary>
    [Fact]
    public async Task ReplayDocsStep0_SendsTheZoneinfo_AndImportsIntoADefaultMachine()
    {
        var doc = File.ReadAllText(Repository.File("docs/replay.md"));
        var step0 = doc[doc.IndexOf("## 0.", StringComparison.Ordinal)..doc.IndexOf("## 1.", StringComparison.Ordinal)];
        var command = step0.Split('\n').First(l => l.StartsWith("    ", StringComparison.Ordinal) && l.Contains("curl", StringComparison.Ordinal)).Trim();
        var match = System.Text.RegularExpressions.Regex.Match(command,
            @"^(?:sudo )?cat (?<files>(?:/proc/\w+ ?)+) \| curl .*?'?localhost:8080(?<path>/zones/Normal/import[^' ]*)'? .*--data-binary @-$");
        Assert.True(match.Success, $"step 0's command is not cat /proc/zoneinfo /proc/pagetypeinfo | curl ... --data-binary @-: {command}");
        var files = match.Groups["files"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["/proc/zoneinfo", "/proc/pagetypeinfo"], files);
        await using var app = new PageAllocApp(); // Normal is 1048576 pages; the fixtures' machine manages 1245184
        var client = app.CreateClient();
        var content = new StringContent(string.Concat(files.Select(f => Fixture(f["/proc/".Length..] + ".txt"))));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/octet-stream");

        var response = await client.PostAsync(match.Groups["path"].Value, content, Ct);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(1245184, (await app.Api().GetZoneAsync("default", "Normal", Ct)).ManagedPages);
    }

    [Fact]
    public async Task ABodyWithoutTheZonesRows_Is400()
    {
        await using var app = new PageAllocApp();

        var response = await Import(app.CreateClient(), "Normal", "MemTotal: 24 GB\n");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("invalid-import", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }
}

/// <summary>POST /zones/{zone}/fragment: the synthetic fragmenter through HTTP.</summary>
public class FragmentEndpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheZone_ReachesItsTarget()
    {
        await using var app = new PageAllocApp();
        var api = app.Api();

        var stats = await api.FragmentZoneAsync("default", "Normal", new PageAlloc.Client.FragmentRequest { FreePages = 500_000, Order = 9, UnusableIndex = 0.6, Seed = 3 }, Ct);

        Assert.Equal(500_000, stats.FreePages);
        Assert.InRange(stats.UnusableIndex[9], 0.59, 0.61);
        Assert.Equal(stats.FreePages, (await api.GetZoneStatsAsync("default", "Normal", Ct)).FreePages);
    }

    [Theory]
    [InlineData("""{"freePages":500000,"order":9,"unusableIndex":1.5}""", HttpStatusCode.BadRequest)]
    [InlineData("""{"freePages":5000000,"order":9,"unusableIndex":0.5}""", HttpStatusCode.Conflict)]
    public async Task ABadTarget_IsRefused_AndChangesNothing(string body, HttpStatusCode status)
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var before = await client.StatsWithoutLocks();

        var response = await client.PostAsync("/zones/Normal/fragment", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(before, await client.StatsWithoutLocks());
    }
}
