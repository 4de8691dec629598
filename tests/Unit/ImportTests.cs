using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Import;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Tests.Unit;

/// <summary>A real machine's free lists imported into a zone read back exactly; what does not fit changes nothing.</summary>
public class ImportTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "proc", name));

    /// <summary>This development machine's zones (its /proc/zoneinfo: DMA 4095 pages at pfn 1, DMA32 1044480 at 4096, Normal 1245184 managed at 1048576).</summary>
    private static Machine LikeTheFixturesMachine() => new(MachineConfig.SingleNode(2, null,
        new ZoneConfig { Name = "DMA", StartPfn = 1, Pages = 4095 },
        new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 1044480 },
        new ZoneConfig { Name = "Normal", StartPfn = 1048576, Pages = 1245184 }));

    /// <summary>One zone's rows of a pagetypeinfo text: its free-count rows and its pageblock row.</summary>
    private static string[] ZoneRows(string pagetypeinfo, string zone) =>
        [.. pagetypeinfo.Split('\n').Where(l => l.Contains($"zone {zone,8}", StringComparison.Ordinal))];

    [Theory]
    [InlineData("DMA")]
    [InlineData("DMA32")]
    [InlineData("Normal")]
    public void ARealPagetypeinfo_ImportsAndPrintsBackByteForByte(string zone)
    {
        var real = Fixture("pagetypeinfo.txt");
        var machine = LikeTheFixturesMachine();
        var counts = FreeListCounts.Parse(real, zone)!;

        Assert.Null(machine.FindZone(zone)!.ImportFreeLists(counts, seed: 1));

        var printed = ProcFs.PageTypeInfo(machine.Stats());
        var expectedFree = ZoneRows(real, zone).Where(l => l.Contains(", type ", StringComparison.Ordinal));
        Assert.All(expectedFree, row => Assert.Contains(row + "\n", printed, StringComparison.Ordinal));
        machine.AssertConsistent();
    }

    [Fact]
    public void PageblockTypes_AreTheRealOnes_AndTheRestOfTheZoneIsInUse()
    {
        var real = Fixture("pagetypeinfo.txt");
        var machine = LikeTheFixturesMachine();
        var normal = machine.FindZone("Normal")!;
        var counts = FreeListCounts.Parse(real, "Normal")!;

        Assert.Null(normal.ImportFreeLists(counts, seed: 7));

        var stats = normal.Stats();
        Assert.Equal([74, 2254, 104, 0, 0], stats.PageblocksByType);
        Assert.Equal(counts.FreePages, stats.FreePages);
        Assert.Equal(stats.ManagedPages - counts.FreePages, stats.AllocatedPages);
        Assert.Contains("Node 0, zone   Normal           74         2254          104            0            0 ", ProcFs.PageTypeInfo(machine.Stats()), StringComparison.Ordinal);
    }

    [Fact]
    public void TheSameSeed_GivesTheSameLayout_AnotherSeedAnother()
    {
        var real = Fixture("pagetypeinfo.txt");
        string Layout(int seed)
        {
            var machine = LikeTheFixturesMachine();
            var normal = machine.FindZone("Normal")!;
            normal.ImportFreeLists(FreeListCounts.Parse(real, "Normal")!, seed);
            return string.Join(",", normal.PageblockMap().MigrateTypes);
        }

        Assert.Equal(Layout(3), Layout(3));
        Assert.NotEqual(Layout(3), Layout(4));
    }

    [Fact]
    public void ABuddyinfo_ImportsAsMovable()
    {
        var machine = LikeTheFixturesMachine();
        var counts = FreeListCounts.Parse(Fixture("buddyinfo.txt"), "Normal")!;

        Assert.Null(machine.FindZone("Normal")!.ImportFreeLists(counts, seed: 1));

        var line = Fixture("buddyinfo.txt").Split('\n').Single(l => l.Contains("Normal", StringComparison.Ordinal));
        Assert.Contains(line + "\n", ProcFs.BuddyInfo(machine.Stats()), StringComparison.Ordinal);
    }

    [Fact]
    public void AnImportThatDoesNotFit_IsRefused_AndChangesNothing()
    {
        var machine = TestMachines.SingleZone(1 << 20, 1 << 14); // 32 pageblocks: the real Normal zone has 2432
        var before = machine.Fingerprint();

        var error = machine.Normal().ImportFreeLists(FreeListCounts.Parse(Fixture("pagetypeinfo.txt"), "Normal")!, seed: 1);

        Assert.Equal(PageErrorKind.ImportDoesNotFit, error?.Kind);
        Assert.Equal(before, machine.Fingerprint());
    }

    [Fact]
    public void AfterAnImport_TheAllocatorRunsOnIt()
    {
        var machine = LikeTheFixturesMachine();
        Assert.Null(machine.FindZone("Normal")!.ImportFreeLists(FreeListCounts.Parse(Fixture("pagetypeinfo.txt"), "Normal")!, seed: 1));

        var blocks = Enumerable.Range(0, 200).Select(i => machine.Alloc("Normal", i % 10, i % 2 == 0 ? "GFP_KERNEL" : "GFP_HIGHUSER_MOVABLE")).ToList();
        foreach (var b in blocks)
        {
            Assert.True(b.Zone.FreePages(b.Pfn, b.Order, 0).IsSuccess);
        }
        machine.AssertConsistent();
    }
}
