using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;
using PageAlloc.Domain.Reclaim;
using PageAlloc.Domain.Snapshots;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// Compaction as mm/compaction.c does it: the migration scanner moves the LRU pages it finds from the
/// zone's start to free pages the free scanner isolates from its end, so a zone whose free memory is
/// in pieces gets its high-order blocks back; pinned pages stay where they are.
/// </summary>
public class CompactionTests
{
    private const long Pages = 65536;

    private static Machine NewMachine() => new(MachineConfig.SingleNode(2, 4096, new ZoneConfig { Name = "Normal", StartPfn = 1 << 20, Pages = Pages }));

    private static long Counter(Machine m, VmscanEvent e) => m.Vmscan.Counters[e];

    /// <summary>
    /// Page cache and a client's pages in about equal numbers, in a seeded random order from the same
    /// pcp lists so that they interleave; then the client frees its pages, leaving free memory in
    /// holes between the page cache (or, with <paramref name="pinnedInsteadOfCache"/>, between a
    /// second client's pinned pages); what is still free in blocks of order 9 or more the second
    /// client pins too.
    /// </summary>
    internal static Machine Fragmented(bool pinnedInsteadOfCache = false)
    {
        var m = NewMachine();
        var zone = m.Normal();
        var mine = new List<long>();
        var random = new Random(25);
        const GfpFlags movable = Gfp.HighUserMovable;
        for (var i = 0; i < Pages - 4096; i++)
        {
            if (random.Next(2) == 0)
            {
                mine.Add(m.AllocPages(zone, 0, movable, 0).Value.Pfn);
            }
            else if (pinnedInsteadOfCache)
            {
                Assert.True(m.AllocPages(zone, 0, movable, 0).IsSuccess);
            }
            else
            {
                Assert.Equal(1, m.ReadFilePages(1, active: false, cpu: 0).Value.Read);
            }
        }
        foreach (var pfn in mine)
        {
            Assert.True(zone.FreePages(pfn, 0, 0).IsSuccess);
        }
        zone.DrainPages(null);
        while (FreeBlocksAtOrAbove(m, 9) > 0)
        {
            Assert.True(m.AllocPages(zone, 9, movable, 0).IsSuccess);
        }
        Assert.Equal(0, m.Vmscan.Counters[VmscanEvent.PgstealKswapd] + m.Vmscan.Counters[VmscanEvent.PgstealDirect]);
        return m;
    }

    private static long FreeBlocksAtOrAbove(Machine m, int order) => m.Normal().Stats().NrFree.Skip(order).Sum();

    [Fact]
    public void TheSetup_LeavesHalfTheZoneFree_InBlocksTooSmallForATransparentHugepage()
    {
        var m = Fragmented();

        Assert.True(m.Normal().NrFreePages > Pages / 3);
        Assert.Equal(0, FreeBlocksAtOrAbove(m, 9));
        m.AssertConsistent();
    }

    [Fact]
    public void AHugepageOnAFragmentedZone_SucceedsThroughAsyncCompaction_AndTheCacheIsMovedNotLost()
    {
        var m = Fragmented();
        var cache = m.LruPages(LruList.InactiveFile);
        var listener = m.Tracepoints.Listen(new TraceFilter(TraceFilter.TypeBit(TraceEventType.MmCompactionBegin) | TraceFilter.TypeBit(TraceEventType.MmCompactionEnd)), 64);

        var thp = m.AllocPages(m.Normal(), 9, Gfp.HighUserMovable | GfpFlags.Comp, 0);

        Assert.True(thp.IsSuccess, thp.Error?.ToString());
        // Moved, not lost: what is not on the LRU any more is what kswapd, woken for order 9 once the
        // allocation had its block, reclaimed.
        Assert.Equal(cache, m.LruPages(LruList.InactiveFile) + Counter(m, VmscanEvent.PgstealKswapd));
        Assert.Equal((1L, 1L, 0L), (Counter(m, VmscanEvent.CompactStall), Counter(m, VmscanEvent.CompactSuccess), Counter(m, VmscanEvent.CompactFail)));
        Assert.True(Counter(m, VmscanEvent.PgmigrateSuccess) >= 256, $"pgmigrate_success {Counter(m, VmscanEvent.PgmigrateSuccess)}");
        Assert.True(Counter(m, VmscanEvent.CompactMigrateScanned) >= 512);
        Assert.True(Counter(m, VmscanEvent.CompactFreeScanned) > 0);
        Assert.Equal(0, Counter(m, VmscanEvent.AllocstallNormal)); // compaction came before reclaim
        var events = new List<TraceEvent>();
        while (listener.Events.TryRead(out var e))
        {
            events.Add(e);
        }
        Assert.Matches("^zone_start=0x100000 migrate_pfn=0x100000 free_pfn=0x10fe00 zone_end=0x110000, mode=async$", TraceText.Fields(events[0]));
        Assert.Matches("^zone_start=0x100000 migrate_pfn=0x[0-9a-f]+ free_pfn=0x[0-9a-f]+ zone_end=0x110000, mode=async status=success$", TraceText.Fields(events[1]));
        m.AssertConsistent();
    }

    [Fact]
    public void PinnedPages_AreNotMoved_SoTheSameZoneOfAClientsPagesFailsTheHugepage()
    {
        var m = Fragmented(pinnedInsteadOfCache: true);

        var thp = m.AllocPages(m.Normal(), 9, Gfp.HighUserMovable | GfpFlags.Comp, 0);

        Assert.Equal(PageErrorKind.OutOfMemory, thp.Error?.Kind);
        Assert.Equal(0, Counter(m, VmscanEvent.PgmigrateSuccess));
        Assert.True(Counter(m, VmscanEvent.CompactStall) >= 1);
        Assert.Equal(0, Counter(m, VmscanEvent.CompactSuccess));
        m.AssertConsistent();
    }

    [Fact]
    public void CompactMemory_RunsUntilTheScannersMeet_GatheringTheFreeMemoryIntoLargeBlocks()
    {
        var m = Fragmented();
        var cache = m.LruPages(LruList.InactiveFile);
        var free = m.Normal().NrFreePages + m.Normal().Stats().PcpPages;

        m.CompactMemory(0);
        m.Normal().DrainPages(null);

        Assert.Equal(cache, m.LruPages(LruList.InactiveFile));
        Assert.Equal(free, m.Normal().NrFreePages);
        var inLargeBlocks = m.Normal().Stats().NrFree.Select((n, order) => order >= 9 ? n << order : 0).Sum();
        Assert.True(inLargeBlocks >= free - 2048, ProcFs.BuddyInfo(m.Stats()));
        Assert.Equal(0, Counter(m, VmscanEvent.CompactStall)); // not a direct compaction
        m.AssertConsistent();
    }

    [Fact]
    public void WithoutEnoughFreeMemory_CompactionIsSkipped_AndNoStallIsCounted()
    {
        var m = NewMachine();
        var zone = m.Normal();
        m.ReadFilePages(Pages - 1500, active: false, cpu: 0); // free near the watermarks: reclaim's job, not compaction's

        var result = m.Compaction.TryToCompactPages(m.ZonelistOf(zone, ZoneType.Normal), 9, Gfp.HighUserMovable, default, ZoneType.Normal, CompactPriority.Async, 0);

        Assert.Equal(CompactResult.Skipped, result);
        Assert.Equal(0, Counter(m, VmscanEvent.CompactMigrateScanned));
    }

    [Fact]
    public void AFallbackBelowAPageblock_BoostsTheWatermarks_AndWakesKswapd_WhichReclaimsTheBoostAndDropsIt()
    {
        var m = Fragmented(); // no free block of order 9 or more: an unmovable fallback takes a smaller one
        var zone = m.Normal();
        Assert.True(zone.NrFreePages > zone.Watermarks.High * 4, "the node is balanced: kswapd would not wake on its own");
        var listener = m.Tracepoints.Listen(new TraceFilter(TraceFilter.TypeBit(TraceEventType.MmVmscanWakeupKswapd)), 16);

        m.Alloc("Normal", 0, "GFP_KERNEL");

        Assert.True(zone.Stats().Event(VmEvent.FallbackClaim) + zone.Stats().Event(VmEvent.FallbackSteal) > 0);
        Assert.True(listener.Events.TryRead(out var wake));
        Assert.Equal("nid=0 order=0 gfp_flags=none", TraceText.Fields(wake)); // rmqueue()'s wakeup_kswapd(zone, 0, 0, zone_idx)
        Assert.True(Counter(m, VmscanEvent.PgstealKswapd) >= PageAllocConstants.PageblockNrPages,
            $"boosted reclaim freed {Counter(m, VmscanEvent.PgstealKswapd)}");
        Assert.Equal(0, zone.WatermarkBoost); // taken back at the end of balance_pgdat()
        Assert.Equal(zone.BaseWatermarks, zone.Watermarks);
        m.AssertConsistent();
    }

    [Fact]
    public void TheBoost_IsAPageblockPerFallback_UpToOneAndAHalfTimesTheHighWatermark_AndShowsInZoneinfo()
    {
        var m = Fragmented();
        var zone = m.Normal();
        var high = zone.BaseWatermarks.High; // 1536: at most 2304
        var fork = m.Fork();

        // GFP_NOWAIT without __GFP_KSWAPD_RECLAIM: boosts, but neither sets the flag nor wakes kswapd.
        for (var i = 0; i < 8; i++)
        {
            Assert.True(m.AllocPages(zone, 3, GfpFlags.NoWarn, 0).IsSuccess);
        }

        Assert.InRange(zone.WatermarkBoost, PageAllocConstants.PageblockNrPages, high * 3 / 2);
        Assert.Equal(zone.BaseWatermarks.Min + zone.WatermarkBoost, zone.Watermarks.Min);
        Assert.Contains($"\n        boost    {zone.WatermarkBoost}\n        min      {zone.Watermarks.Min}\n", ProcFs.ZoneInfo(m.Stats(), m.Cpus), StringComparison.Ordinal);
        Assert.Equal(0, Counter(m, VmscanEvent.PageOutRun));
        Assert.Equal(0, fork.Normal().WatermarkBoost);
        using var buffer = new MemoryStream();
        MachineSnapshot.Write(m, buffer);
        Assert.Equal(zone.WatermarkBoost, MachineSnapshot.Read(new MemoryStream(buffer.ToArray())).Normal().WatermarkBoost);
    }

    [Fact]
    public void KswapdThatCannotReclaim_WakesKcompactdForTheOrder_WhichMovesAnonPages()
    {
        // Anon pages interleaved with holes: nothing is reclaimable (no swap), but all is movable.
        var m = NewMachine();
        var zone = m.Normal();
        var random = new Random(3);
        var mine = new List<long>();
        for (var i = 0; i < Pages - 4096; i++)
        {
            if (random.Next(2) == 0)
            {
                mine.Add(m.AllocPages(zone, 0, Gfp.HighUserMovable, 0).Value.Pfn);
            }
            else
            {
                Assert.Equal(1, m.FaultAnonPages(1, 0).Value.Read);
            }
        }
        mine.ForEach(pfn => zone.FreePages(pfn, 0, 0));
        zone.DrainPages(null);
        while (FreeBlocksAtOrAbove(m, 9) > 0)
        {
            Assert.True(m.AllocPages(zone, 9, Gfp.HighUserMovable, 0).IsSuccess);
        }
        var anon = m.LruPages(LruList.InactiveAnon);
        var listener = m.Tracepoints.Listen(new TraceFilter(TraceFilter.TypeBit(TraceEventType.MmCompactionWakeupKcompactd) | TraceFilter.TypeBit(TraceEventType.MmCompactionKcompactdWake)), 16);

        // THP faults that may wake kswapd but neither reclaim nor compact themselves: each fails, and
        // kswapd, woken for order 9, finds nothing to reclaim (a failure), then sleeps for order 0.
        // Once MAX_RECLAIM_RETRIES failures make the node hopeless, wakeup_kswapd() leaves it alone
        // and wakes kcompactd for the order instead, which compacts a block.
        var faults = 0;
        while (Counter(m, VmscanEvent.CompactDaemonWake) == 0 && faults++ < 2 * PageAllocConstants.MaxReclaimRetries)
        {
            Assert.False(m.AllocPages(zone, 9, Gfp.TransHugeLight | GfpFlags.KswapdReclaim, 0).IsSuccess);
        }
        Assert.Equal(PageAllocConstants.MaxReclaimRetries + 1, faults);
        Assert.Equal(PageAllocConstants.MaxReclaimRetries, m.Vmscan.KswapdFailures(0));
        Assert.Contains("node_unreclaimable:  1", ProcFs.ZoneInfo(m.Stats(), m.Cpus, m.Vmscan), StringComparison.Ordinal);

        var events = new List<string>();
        while (listener.Events.TryRead(out var e))
        {
            events.Add($"{TraceText.Name(e.Type)}: {TraceText.Fields(e)}");
        }
        Assert.Equal(["mm_compaction_wakeup_kcompactd: nid=0 order=9 classzone_idx=Movable ", "mm_compaction_kcompactd_wake: nid=0 order=9 classzone_idx=Normal  "], events);
        Assert.Equal(0, Counter(m, VmscanEvent.PgstealKswapd)); // anon without swap: nothing reclaimed
        Assert.Equal(1, Counter(m, VmscanEvent.CompactDaemonWake));
        Assert.True(Counter(m, VmscanEvent.PgmigrateSuccess) > 0);
        Assert.Equal(anon, m.LruPages(LruList.InactiveAnon)); // moved, every one
        Assert.Equal(0, Counter(m, VmscanEvent.CompactStall)); // kcompactd's runs are not stalls
        Assert.True(m.AllocPages(zone, 9, Gfp.TransHugeLight, 0).IsSuccess); // the next fault finds kcompactd's block
        m.AssertConsistent();
    }

    [Fact]
    public void Deferral_SkipsTwoToTheShiftAttempts_AfterEachFailure()
    {
        var zone = NewMachine().Normal();
        Compaction.DeferCompaction(zone, 9); // shift 1: the next attempt is skipped, the one after runs

        Assert.Equal(0, zone.CompactOrderFailed); // (it starts at 0: every order counts as failed)
        Assert.True(Compaction.CompactionDeferred(zone, 9));
        Assert.False(Compaction.CompactionDeferred(zone, 9));
        Compaction.DeferCompaction(zone, 9);
        Compaction.DeferCompaction(zone, 9); // shift 3: seven attempts skipped
        Assert.Equal(7, Enumerable.Range(0, 8).Count(_ => Compaction.CompactionDeferred(zone, 9)));
        Compaction.CompactionDeferReset(zone, 9, allocSuccess: true);
        Assert.Equal((0, 0, 10), (zone.CompactConsidered, zone.CompactDeferShift, zone.CompactOrderFailed));
        Assert.False(Compaction.CompactionDeferred(zone, 9)); // below the failed order: never deferred
    }

    [Theory]
    [InlineData(CompactResult.Success, 4, CompactPriority.SyncLight, true, CompactPriority.SyncLight)] // retries 1..4 for a costly order
    [InlineData(CompactResult.Success, 5, CompactPriority.SyncLight, false, CompactPriority.SyncLight)] // past them; SYNC_LIGHT is a costly order's floor
    [InlineData(CompactResult.Complete, 0, CompactPriority.Async, true, CompactPriority.SyncLight)] // a failure raises the priority
    [InlineData(CompactResult.Deferred, 0, CompactPriority.SyncLight, false, CompactPriority.SyncLight)]
    public void ShouldCompactRetry_FollowsTheKernelsRules_ForACostlyOrder(CompactResult result, int retriesBefore, CompactPriority before, bool retry, CompactPriority after)
    {
        var m = NewMachine();
        var priority = before;
        var retries = retriesBefore - 1;

        Assert.Equal(retry, Compaction.ShouldCompactRetry(m.ZonelistOf(m.Normal(), ZoneType.Normal), 9, ZoneType.Normal, result, ref priority, ref retries));
        Assert.Equal(after, priority);
    }

    [Fact]
    public void AForkAndASnapshot_CarryTheCompactionState_AndBehaveAsTheOriginal()
    {
        var m = Fragmented();
        Assert.True(m.AllocPages(m.Normal(), 9, Gfp.HighUserMovable | GfpFlags.Comp, 0).IsSuccess); // moves the cached scanner positions
        var fork = m.Fork();
        using var buffer = new MemoryStream();
        MachineSnapshot.Write(m, buffer);
        var restored = MachineSnapshot.Read(new MemoryStream(buffer.ToArray()));

        for (var i = 0; i < 3; i++)
        {
            var pfn = m.AllocPages(m.Normal(), 9, Gfp.HighUserMovable | GfpFlags.Comp, 0).Value.Pfn;
            Assert.Equal(pfn, fork.AllocPages(fork.Normal(), 9, Gfp.HighUserMovable | GfpFlags.Comp, 0).Value.Pfn);
            Assert.Equal(pfn, restored.AllocPages(restored.Normal(), 9, Gfp.HighUserMovable | GfpFlags.Comp, 0).Value.Pfn);
        }
        Assert.Equal(m.Fingerprint(), fork.Fingerprint());
        Assert.Equal(m.Fingerprint(), restored.Fingerprint());
    }
}
