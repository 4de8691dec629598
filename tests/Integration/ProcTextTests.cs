using System.Text.RegularExpressions;

namespace PageAlloc.Tests.Integration;

/// <summary>The /proc views parse as the real files do: same line shapes as this machine's kernel.</summary>
public partial class ProcTextTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [GeneratedRegex(@"^Node (\d+), zone +(\S+) ((?: *\d+ ){11})$")]
    private static partial Regex BuddyinfoLine();

    [GeneratedRegex(@"^Node +(\d+), zone +(\S+), type +(\S+) ((?:>? *\d+ ){11})$")]
    private static partial Regex PagetypeinfoFreeLine();

    private static async Task<string> Get(string path)
    {
        await using var app = new PageAllocApp();
        var response = await app.CreateClient().GetAsync(path, Ct);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync(Ct);
    }

    [Fact]
    public async Task Buddyinfo_EveryLineParsesLikeTheKernels()
    {
        var lines = (await Get("/proc/buddyinfo")).TrimEnd('\n').Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.All(lines, l => Assert.Matches(BuddyinfoLine(), l));
        var normal = BuddyinfoLine().Match(lines[2]);
        Assert.Equal("Normal", normal.Groups[2].Value);
        Assert.Equal("1024", normal.Groups[3].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)[10]);

        if (File.Exists("/proc/buddyinfo"))
        {
            // The same parser reads the real file.
            Assert.All(File.ReadAllLines("/proc/buddyinfo"), l => Assert.Matches(BuddyinfoLine(), l));
        }
    }

    [Fact]
    public async Task Pagetypeinfo_HeadersAreTheKernels_AndLinesParse()
    {
        var lines = (await Get("/proc/pagetypeinfo")).Split('\n');
        Assert.Equal("Page block order: 9", lines[0]);
        Assert.Equal("Pages per block:  512", lines[1]);
        Assert.Equal("", lines[2]);
        Assert.Equal("Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 ", lines[3]);
        Assert.Equal(15, lines.Count(l => PagetypeinfoFreeLine().IsMatch(l)));
        Assert.Contains("Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate ", lines);
        Assert.Contains("Node 0, zone   Normal            0         2048            0            0            0 ", lines);

        var real = TryReadRealPagetypeinfo();
        if (real is not null)
        {
            Assert.Equal(real[..4], lines[..4]);
            Assert.Equal(real.Count(l => PagetypeinfoFreeLine().IsMatch(l)), real.Count(l => l.StartsWith("Node ", StringComparison.Ordinal) && l.Contains(", type ", StringComparison.Ordinal)));
        }
    }

    private static string[]? TryReadRealPagetypeinfo()
    {
        try
        {
            return File.ReadAllText("/proc/pagetypeinfo").Split('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // the file is root-only
        }
    }

    [Fact]
    public async Task Zoneinfo_AndVmstat_UseTheKernelsFieldNames()
    {
        var zoneinfo = await Get("/proc/zoneinfo");
        // zoneinfo_show_print(): the node's stats in its first populated zone, then the zone's own.
        Assert.StartsWith("Node 0, zone      DMA\n  per-node stats\n      nr_inactive_anon 0\n      nr_active_anon 0\n      nr_inactive_file 0\n", zoneinfo, StringComparison.Ordinal);
        Assert.Contains("\n      nr_file_pages 0\n  pages free     4095\n        boost    0\n        min      ", zoneinfo, StringComparison.Ordinal);
        Assert.Contains("\n      nr_free_pages 4095\n      nr_zone_inactive_anon 0\n", zoneinfo, StringComparison.Ordinal);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(zoneinfo, "per-node stats"));
        Assert.Contains("\n  start_pfn:           1048576\n", zoneinfo, StringComparison.Ordinal);

        var vmstat = (await Get("/proc/vmstat")).TrimEnd('\n').Split('\n');
        Assert.All(vmstat, l => Assert.Matches(@"^[a-z0-9_]+ \d+$", l));
        Assert.Contains("pgalloc_normal 0", vmstat);
        Assert.Contains("nr_free_pages 2097151", vmstat);
    }

    [Fact]
    public async Task DebugfsIndices_AgreeWithTheZoneStats_AfterAllocations()
    {
        await using var app = new PageAllocApp();
        var api = app.Api();
        for (var i = 0; i < 20; i++)
        {
            await api.AllocPagesAsync("default", "DMA", new PageAlloc.Client.AllocPagesRequest { Order = i % 5, Gfp = "GFP_DMA" }, Ct);
        }
        var client = app.CreateClient();

        var extfrag = (await client.GetStringAsync("/sys/kernel/debug/extfrag/extfrag_index", Ct)).TrimEnd('\n').Split('\n');
        var unusable = (await client.GetStringAsync("/sys/kernel/debug/extfrag/unusable_index", Ct)).TrimEnd('\n').Split('\n');
        var dma = await api.GetZoneStatsAsync("default", "DMA", Ct);

        Assert.Equal(3, extfrag.Length);
        Assert.Equal(3, unusable.Length);
        static string Line(string zone, IEnumerable<double> values) =>
            $"Node 0, zone {zone,8} " + string.Concat(values.Select(v => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{v:0.000} ")));
        Assert.Equal(Line("DMA", dma.ExtfragIndex), extfrag[0]);
        Assert.Equal(Line("DMA", dma.UnusableIndex), unusable[0]);
        Assert.Contains(dma.UnusableIndex, v => v is > 0 and < 1); // the allocations left DMA's free memory in pieces
        Assert.Equal("Node 0, zone   Normal" + string.Concat(Enumerable.Repeat(" -1.000", 11)) + " ", extfrag[2]); // all free: every order succeeds
    }
}
