using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// alloc_contig_range() and alloc_contig_pages() (mm/page_alloc.c): pageblocks isolated, pcp lists
/// drained, the range taken as order-0 pages with one reference each, -EBUSY for a pinned page
/// (page cache is migrated: ReclaimTests), and the isolation always undone.
/// </summary>
public class ContigAllocTests
{
    private const long Start = 0x100000;

    private static Machine Machine(int cpus = 1) => TestMachines.SingleZone(Start, 8192, cpus);

    private static void AssertNoPageblockIsolated(Zone zone) =>
        Assert.Equal(0, zone.Stats().PageblocksByType[(int)MigrateType.Isolate]);

    [Fact]
    public void AFreeRange_ComesBackAsOrder0PagesWithOneReference_AndFreeContigRangeGivesTheBootStateBack()
    {
        var m = Machine();
        var zone = m.Normal();
        var boot = m.BuddyInfo();

        var result = zone.AllocContigRange(Start + 100, 1000, Gfp.Kernel);

        Assert.True(result.IsSuccess, result.Error?.ToString());
        Assert.Equal(8192 - 1000, zone.NrFreePages);
        foreach (var pfn in new[] { Start + 100, Start + 611, Start + 1099 })
        {
            var page = zone.GetPageState(pfn).Value;
            Assert.Equal((PageLocation.Allocated, 1, 0, pfn), (page.Where, page.Refcount, page.BlockOrder, page.BlockPfn));
        }
        Assert.Equal(PageLocation.Buddy, zone.GetPageState(Start + 99).Value.Where);
        Assert.Equal(PageLocation.Buddy, zone.GetPageState(Start + 1100).Value.Where);
        AssertNoPageblockIsolated(zone);
        m.AssertConsistent();

        Assert.Equal(1000, zone.FreeContigRange(Start + 100, 1000, FreeStrategy.Upstream, 0).Value.Freed);
        zone.DrainPages(null);
        Assert.Equal(boot, m.BuddyInfo());
        m.AssertConsistent();
    }

    [Fact]
    public void APageInUse_MakesItEbusy_AndChangesNothing()
    {
        var m = Machine();
        var zone = m.Normal();
        var block = m.Alloc("Normal", 10);
        Assert.True(zone.SplitPage(block.Pfn, 10).IsSuccess);
        Assert.Equal(1023, zone.FreeContigRange(block.Pfn, 1023, FreeStrategy.Chunked, 0).Value.Freed); // the last page stays in use
        zone.DrainPages(null);
        var before = m.Fingerprint();

        var result = zone.AllocContigRange(block.Pfn, 1024, Gfp.Kernel);

        Assert.Equal(PageErrorKind.Busy, result.Error?.Kind);
        Assert.Contains($"{block.Pfn + 1023:x}", result.Error!.Detail, StringComparison.Ordinal);
        AssertNoPageblockIsolated(zone);
        Assert.Equal(before, m.Fingerprint());
        m.AssertConsistent();
    }

    [Fact]
    public void PagesOnAPcpList_AreDrainedIntoTheRange()
    {
        // drain_all_pages(zone) after isolation: the pcp's pages go to the Isolate lists, then into the range.
        var m = Machine();
        var zone = m.Normal();
        var page = m.Alloc("Normal", 0);
        Assert.True(zone.FreePages(page.Pfn, 0, 0).IsSuccess);
        Assert.Equal(PageLocation.Pcp, zone.GetPageState(page.Pfn).Value.Where);
        var first = page.Pfn & ~511L;

        Assert.True(zone.AllocContigRange(first, 512, Gfp.Kernel).IsSuccess);

        Assert.Equal(PageLocation.Allocated, zone.GetPageState(page.Pfn).Value.Where);
        Assert.Equal(0, zone.Stats().PcpPages);
        m.AssertConsistent();
    }

    [Fact]
    public void GfpComp_IsRefused()
    {
        var m = Machine();
        Assert.Equal(PageErrorKind.InvalidGfp, m.Normal().AllocContigRange(Start, 512, Gfp.Kernel | GfpFlags.Comp).Error?.Kind);
        Assert.Equal(PageErrorKind.InvalidGfp, m.AllocContigPages(m.Normal(), 512, Gfp.Kernel | GfpFlags.Comp, TestContext.Current.CancellationToken).Error?.Kind);
    }

    [Fact]
    public void AllocContigPages_TriesEachAlignedCandidate_AndTakesTheFirstThatIsFree()
    {
        // alloc_contig_pages(): pfn = ALIGN(zone_start_pfn, nr_pages), then steps of nr_pages.
        var m = Machine();
        var zone = m.Normal();
        m.Alloc("Normal", 0); // one page in use in the first 2048-page candidate
        var inUse = m.Alloc("Normal", 0).Pfn;
        Assert.InRange(inUse, Start, Start + 2047);

        var result = m.AllocContigPages(zone, 2048, Gfp.Kernel, TestContext.Current.CancellationToken);

        Assert.True(result.IsSuccess, result.Error?.ToString());
        Assert.Equal(Start + 2048, result.Value.Pfn);
        m.AssertConsistent();
    }

    [Fact]
    public void AllocContigPages_StopsItsScan_WhenCancelled()
    {
        // 8192 single-page candidates, every one in use: the scan checks its token every 1024.
        var m = Machine();
        while (m.AllocPages(m.Normal(), 10, Gfp.Kernel, 0).IsSuccess)
        {
        }
        var before = m.Fingerprint();

        Assert.Throws<OperationCanceledException>(() => m.AllocContigPages(m.Normal(), 1, Gfp.Kernel, new CancellationToken(canceled: true)));

        Assert.Equal(before, m.Fingerprint());
        AssertNoPageblockIsolated(m.Normal());
    }

    [Fact]
    public void RacingRangeAllocations_AndPageAllocations_NeverOverlap()
    {
        // Two cpus take and free overlapping ranges while two others allocate and free pages: every
        // call succeeds or is refused whole, and the zone stays consistent.
        var m = Machine(cpus: 4);
        var zone = m.Normal();
        var ranges = 0;
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, cpu =>
        {
            var random = new Random(cpu);
            for (var i = 0; i < 300; i++)
            {
                if (cpu < 2)
                {
                    var pfn = Start + random.Next(0, 8192 - 1024);
                    if (zone.AllocContigRange(pfn, 1000, Gfp.Kernel).IsSuccess)
                    {
                        Interlocked.Increment(ref ranges);
                        Assert.Equal(1000, zone.FreeContigRange(pfn, 1000, FreeStrategy.Chunked, cpu).Value.Freed);
                    }
                }
                else if (m.AllocPages(zone, random.Next(0, 4), Gfp.Kernel, cpu) is { IsSuccess: true } block)
                {
                    Assert.True(zone.FreePages(block.Value.Pfn, block.Value.Order, cpu).IsSuccess);
                }
            }
        });

        Assert.True(ranges > 0);
        AssertNoPageblockIsolated(zone);
        m.AssertConsistent();
    }
}
