using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// The highatomic reserve (mm/page_alloc.c): reserve_highatomic_pageblock() after a high-order
/// atomic allocation of the slow path served by the buddy (v7.1+: an empty pcp list is not
/// refilled for it, a block already on one grows nothing), rmqueue_buddy() taking from it first, the watermark check
/// leaving it out for everyone else, and unreserve_highatomic_pageblock() before an allocation fails.
/// </summary>
public class HighatomicTests
{
    /// <summary>
    /// One 65536-page Normal zone (1% is 655 pages: the reserve may grow to two pageblocks), filled
    /// by blocking __GFP_MEMALLOC allocations (which neither reserve nor touch the reserve) until its
    /// free pages are just under the low watermark, so GFP_ATOMIC is served by the slow path only.
    /// min_free_kbytes 16384 gives min 4096 and low 5120; 512 gives min 128 and low 193.
    /// </summary>
    private static Machine BelowLow(long minFreeKbytes = 16384)
    {
        var m = new Machine(MachineConfig.SingleNode(1, minFreeKbytes, new ZoneConfig { Name = "Normal", StartPfn = 0x100000, Pages = 65536 }));
        var zone = m.Normal();
        var target = zone.Watermarks.Low - 1;
        while (zone.NrFreePages - 1024 > target)
        {
            m.Alloc("Normal", 10, Filler);
        }
        while (zone.NrFreePages > target)
        {
            m.Alloc("Normal", 4, Filler); // the buddy's own steps of 16 pages (pcp refills would overshoot)
        }
        Assert.InRange(zone.NrFreePages, zone.Watermarks.Min + 32, zone.Watermarks.Low - 1);
        return m;
    }

    private const string Filler = "GFP_KERNEL|__GFP_MEMALLOC|__GFP_NORETRY";

    /// <summary>
    /// Allocates until nothing but the reserve is free. GFP_KERNEL|__GFP_MEMALLOC|__GFP_NORETRY goes
    /// below every watermark but never into the reserve: a non-blocking request could
    /// (rmqueue_buddy()'s ALLOC_NON_BLOCK fallback), and without __GFP_NORETRY the last attempt would
    /// force the reserve open.
    /// </summary>
    private static void ExhaustAllButTheReserve(Machine m)
    {
        var zone = m.Normal();
        zone.DrainPages(null);
        while (m.AllocPages(zone, 0, Gfp.Kernel | GfpFlags.MemAlloc | GfpFlags.NoRetry, 0).IsSuccess)
        {
        }
        Assert.Equal(zone.FreeHighatomicPages, zone.NrFreePages);
    }

    private static bool InPageblock(long pfn, long blockPfn) => pfn >> PageAllocConstants.PageblockOrder == blockPfn >> PageAllocConstants.PageblockOrder;

    [Fact]
    public void AnOrderTwoGfpAtomicServedByTheSlowPath_ReservesItsPageblock()
    {
        // gfp_to_alloc_flags(): no __GFP_DIRECT_RECLAIM and order > 0 give ALLOC_HIGHATOMIC; rmqueue_buddy()
        // then calls reserve_highatomic_pageblock(), which moves the block's free pages to MIGRATE_HIGHATOMIC.
        var m = BelowLow();
        var zone = m.Normal();

        var block = m.Alloc("Normal", 2, "GFP_ATOMIC");

        Assert.Equal(PageAllocConstants.PageblockNrPages, zone.ReservedHighatomicPages);
        Assert.Equal(MigrateType.HighAtomic, zone.GetPageState(block.Pfn).Value.PageblockMigrateType);
        var stats = zone.Stats();
        Assert.Equal(1, stats.PageblocksByType[(int)MigrateType.HighAtomic]);
        Assert.True(zone.FreeHighatomicPages > 0);
        Assert.Contains($"reserved_highatomic: {PageAllocConstants.PageblockNrPages}\n  free_highatomic:     {zone.FreeHighatomicPages}",
            PageAlloc.Domain.Proc.ProcFs.ZoneInfo(m.Stats(), m.Cpus), StringComparison.Ordinal);
        m.AssertConsistent();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void AnAtomicPcpOrderRequest_WithAnEmptyPcpList_DoesNotRefillIt_AndIsServedAndReservedByTheBuddy(int order)
    {
        // v7.1+ (b480cbb07102): __rmqueue_pcplist() returns NULL on an empty list for ALLOC_HIGHATOMIC
        // instead of calling rmqueue_bulk(); rmqueue() falls back to rmqueue_buddy(), which then
        // calls reserve_highatomic_pageblock(). BelowLow() filled the zone through the buddy only
        // (orders 10 and 4), so every pcp list is empty.
        var m = BelowLow();
        var zone = m.Normal();
        Assert.Equal(0, zone.Stats().PcpPages);

        var block = m.Alloc("Normal", order, "GFP_ATOMIC");

        Assert.False(block.FromPcp);
        var stats = zone.Stats();
        Assert.Equal(0, stats.PcpPages);
        Assert.Equal(0, stats.Event(VmEvent.PcpRefill));
        Assert.Equal(PageAllocConstants.PageblockNrPages, zone.ReservedHighatomicPages);
        Assert.Equal(MigrateType.HighAtomic, zone.GetPageState(block.Pfn).Value.PageblockMigrateType);
        m.AssertConsistent();
    }

    [Fact]
    public void AnAtomicRequest_ServedFromAPcpListThatHasABlock_DoesNotGrowTheReserve()
    {
        // v7.1+ (b480cbb07102): __rmqueue_pcplist() still takes a block already on the list for
        // ALLOC_HIGHATOMIC (only an empty list is not refilled), and reserve_highatomic_pageblock()
        // is called from rmqueue_buddy() only, no longer from get_page_from_freelist() after any
        // success. A blocking order-2 request at the min watermark (no ALLOC_HIGHATOMIC) refills
        // cpu 0's Unmovable order-2 list and leaves the rest of its batch there.
        var m = BelowLow();
        var zone = m.Normal();
        Assert.True(m.Alloc("Normal", 2, Filler).FromPcp);
        Assert.True(zone.Stats().PcpPages > 0);
        Assert.True(zone.NrFreePages < zone.Watermarks.Low, "the fast path would serve it");

        var block = m.Alloc("Normal", 2, "GFP_ATOMIC");

        Assert.True(block.FromPcp);
        Assert.Equal(0, zone.ReservedHighatomicPages);
        Assert.NotEqual(MigrateType.HighAtomic, zone.GetPageState(block.Pfn).Value.PageblockMigrateType);
        Assert.Equal(0, zone.Stats().PageblocksByType[(int)MigrateType.HighAtomic]);
        m.AssertConsistent();
    }

    [Fact]
    public void TheFastPath_NeverReserves()
    {
        // Above the low watermark get_page_from_freelist() succeeds with ALLOC_WMARK_LOW only: no ALLOC_HIGHATOMIC.
        var m = new Machine(MachineConfig.SingleNode(1, 16384, new ZoneConfig { Name = "Normal", StartPfn = 0x100000, Pages = 65536 }));

        m.Alloc("Normal", 2, "GFP_ATOMIC");

        Assert.Equal(0, m.Normal().ReservedHighatomicPages);
    }

    [Fact]
    public void TheReserve_StopsAtOnePercentOfTheZone()
    {
        // max_managed = ALIGN(managed / 100, pageblock_nr_pages): 1024 pages here.
        var m = BelowLow();
        for (var i = 0; i < 4; i++)
        {
            m.Alloc("Normal", 9, "GFP_ATOMIC|__GFP_COMP"); // each in a pageblock of its own
        }
        Assert.Equal(1024, m.Normal().ReservedHighatomicPages);
        m.AssertConsistent();
    }

    [Fact]
    public void ZoneWatermarkOk_LeavesTheReserveOutForRequestsWithoutReserves()
    {
        // __zone_watermark_unusable_free(): nr_free_highatomic is subtracted unless ALLOC_RESERVES.
        var m = BelowLow();
        m.Alloc("Normal", 2, "GFP_ATOMIC");
        var zone = m.Normal();
        var usable = zone.NrFreePages - zone.FreeHighatomicPages;

        Assert.True(zone.ZoneWatermarkOk(0, usable - 1, ZoneType.Normal, AllocFlags.WmarkMin));
        Assert.False(zone.ZoneWatermarkOk(0, usable, ZoneType.Normal, AllocFlags.WmarkMin));
        Assert.True(zone.ZoneWatermarkOk(0, usable, ZoneType.Normal, AllocFlags.WmarkMin | AllocFlags.NonBlock));
    }

    [Fact]
    public void RmqueueBuddy_ServesAHighOrderAtomicRequestFromTheReserveFirst()
    {
        // rmqueue_buddy(): with ALLOC_HIGHATOMIC, __rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC) comes first.
        var m = BelowLow();
        var first = m.Alloc("Normal", 2, "GFP_ATOMIC");

        var order4 = m.Alloc("Normal", 4, "GFP_ATOMIC");

        Assert.True(InPageblock(order4.Pfn, first.Pfn), $"order-4 block at {order4.Pfn:x} is outside the reserved pageblock of {first.Pfn:x}");
        m.AssertConsistent();
    }

    [Fact]
    public void ABlockingAllocationAboutToFail_GetsTheReserveBack()
    {
        // Direct reclaim frees nothing here, so __alloc_pages_direct_reclaim() returns without
        // draining; should_reclaim_retry() then gives the reserve back (unreserve_highatomic_pageblock(ac,
        // true)) before the OOM killer would run, and the retry succeeds on its free pages.
        var m = BelowLow(minFreeKbytes: 512);
        var zone = m.Normal();
        var atomic = m.Alloc("Normal", 2, "GFP_ATOMIC");
        FreeTheFillersOf(zone, atomic.Pfn); // their pages join the reserve: more than min (128) is reserved
        ExhaustAllButTheReserve(m);
        Assert.True(zone.FreeHighatomicPages > zone.Watermarks.Min);

        var result = m.AllocPages(zone, 0, Gfp.Kernel, 0);

        Assert.True(result.IsSuccess, result.Error?.ToString());
        Assert.True(InPageblock(result.Value.Pfn, atomic.Pfn));
        Assert.Equal(0, zone.ReservedHighatomicPages);
        Assert.Equal(0, zone.Stats().PageblocksByType[(int)MigrateType.HighAtomic]);
        m.AssertConsistent();
    }

    /// <summary>Frees every order-0 page in use in the pageblock of <paramref name="pfn"/> but the block at pfn.</summary>
    private static void FreeTheFillersOf(Zone zone, long pfn)
    {
        var first = pfn & ~((long)PageAllocConstants.PageblockNrPages - 1);
        for (var p = first; p < first + PageAllocConstants.PageblockNrPages; p++)
        {
            var state = zone.GetPageState(p).Value;
            if (state is { Where: PageLocation.Allocated, BlockOrder: 0 } && state.BlockPfn == p)
            {
                Assert.True(zone.FreePages(p, 0, 0).IsSuccess);
            }
        }
        zone.DrainPages(null);
    }

    [Fact]
    public void GfpNoretry_KeepsTheLastReservedPageblock()
    {
        // __GFP_NORETRY goes to nopage after direct reclaim, before should_reclaim_retry() could force the reserve open.
        var m = BelowLow(minFreeKbytes: 512);
        var zone = m.Normal();
        FreeTheFillersOf(zone, m.Alloc("Normal", 2, "GFP_ATOMIC").Pfn);
        ExhaustAllButTheReserve(m);

        var result = m.AllocPages(zone, 0, Gfp.Kernel | GfpFlags.NoRetry, 0);

        Assert.Equal(PageErrorKind.OutOfMemory, result.Error?.Kind);
        Assert.Equal(PageAllocConstants.PageblockNrPages, zone.ReservedHighatomicPages);
    }

    [Fact]
    public void BothMobilityBits_AreNotGfpZoneBad_ButRefusedWithTheKernelsReading()
    {
        // gfp_zone() has no trouble with __GFP_MOVABLE|__GFP_RECLAIMABLE (only zone modifiers make
        // GFP_ZONE_BAD); gfp_migratetype() warns and reads MIGRATE_HIGHATOMIC, which PageAlloc refuses.
        var m = new Machine(MachineConfig.SingleNode(1, 0, new ZoneConfig { Name = "Normal", StartPfn = 0x100000, Pages = 4096 }));
        Assert.True(Gfp.TryGetZone(GfpFlags.Movable | GfpFlags.Reclaimable, out var zone));
        Assert.Equal(ZoneType.Normal, zone);

        var result = m.AllocPages(m.Normal(), 0, Gfp.Kernel | GfpFlags.Movable | GfpFlags.Reclaimable, 0);

        Assert.Equal(PageErrorKind.InvalidGfp, result.Error?.Kind);
        Assert.Contains("MIGRATE_HIGHATOMIC", result.Error!.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("GFP_ZONE_BAD", result.Error.Detail, StringComparison.Ordinal);
    }
}
