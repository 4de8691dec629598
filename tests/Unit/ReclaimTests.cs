using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;
using PageAlloc.Domain.Reclaim;
using PageAlloc.Domain.Snapshots;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// Reclaim as mm/vmscan.c does it: the system's page cache on the LRU lists, kswapd woken below
/// the low watermark and reclaiming to the high one, direct reclaim in the slow path, drop_caches,
/// and client allocations that page cache no longer makes fail.
/// </summary>
public class ReclaimTests
{
    // 256 MiB of Normal, min_free_kbytes 4096: min 1024, low 1280, high 1536 pages.
    private const long Pages = 65536;

    private static MachineConfig Config(long pageCache = 0, long active = 0, int cpus = 2)
    {
        var config = MachineConfig.SingleNode(cpus, 4096, new ZoneConfig { Name = "Normal", StartPfn = 1 << 20, Pages = Pages });
        config.PageCache = new PageCacheConfig { Pages = pageCache, ActivePages = active };
        return config;
    }

    private static Machine Full(long pageCache = 2 * Pages, long active = 0) => new(Config(pageCache, active));

    private static long Lru(Machine m, LruList lru) => m.LruPages(lru);

    private static long Counter(Machine m, VmscanEvent e) => m.Vmscan.Counters[e];

    [Fact]
    public void TheWatermarks_AreTheOnesTheseTestsAssume()
    {
        var wm = new Machine(Config()).Normal().Watermarks;

        Assert.Equal((1024L, 1280L, 1536L), (wm.Min, wm.Low, wm.High));
    }

    [Fact]
    public void PageCacheThatOutgrowsMemory_LeavesFreeMemoryBetweenTheWatermarks_ThroughKswapd()
    {
        var m = Full();
        var zone = m.Normal();
        var wm = zone.Watermarks;

        // Every page is free, on a pcp list or page cache: nothing is lost on the way.
        var stats = zone.Stats();
        Assert.Equal(Pages, stats.FreePages + stats.PcpPages + stats.Lru(LruList.InactiveFile));
        Assert.Equal(stats.AllocatedPages, stats.Lru(LruList.InactiveFile));
        // Every page read is on the LRU or was reclaimed: the reads never failed.
        var kswapd = Counter(m, VmscanEvent.PgstealKswapd);
        var direct = Counter(m, VmscanEvent.PgstealDirect);
        Assert.Equal(2 * Pages, kswapd + direct + Lru(m, LruList.InactiveFile));
        // kswapd, woken below the low watermark, did most of it; a read that a pcp refill left
        // below min reclaimed for itself, as a real one does.
        Assert.True(Counter(m, VmscanEvent.PageOutRun) > 0);
        Assert.True(kswapd > 10 * direct, $"pgsteal_kswapd {kswapd}, pgsteal_direct {direct}");
        Assert.Equal(kswapd, Counter(m, VmscanEvent.PgscanKswapd)); // clean page cache: every page scanned is freed
        Assert.Equal(direct, Counter(m, VmscanEvent.PgscanDirect));
        Assert.InRange(zone.NrFreePages, wm.Min / 2, wm.High + (2L * Pages / 64));
        Assert.True(Lru(m, LruList.InactiveFile) > Pages * 9 / 10);
        m.AssertConsistent();
    }

    [Fact]
    public void ClientAllocations_TakeMemoryFromThePageCache_InsteadOfFailing()
    {
        var m = Full();
        var cache = Lru(m, LruList.InactiveFile);
        var taken = new List<long>();

        for (var i = 0; i < Pages / 2; i++)
        {
            taken.Add(m.Alloc("Normal", 0).Pfn);
        }

        Assert.Equal(Pages / 2, taken.Distinct().Count());
        Assert.True(Lru(m, LruList.InactiveFile) < cache - (Pages / 3));
        var stats = m.Normal().Stats();
        Assert.Equal(Pages, stats.FreePages + stats.PcpPages + stats.Lru(LruList.InactiveFile) + taken.Count);
        m.AssertConsistent();
    }

    [Fact]
    public void WithoutPageCache_AFullMachineStillFails_AndStallsTwicePerDirectReclaim()
    {
        var m = new Machine(Config());
        var zone = m.Normal();
        while (m.AllocPages(zone, 0, Gfp.Kernel, 0).IsSuccess)
        {
        }

        // do_try_to_free_pages() runs its priorities once, finds nothing, and runs them again with the
        // memcg walk made full before it gives up; should_reclaim_retry() then sees nothing reclaimable.
        Assert.Equal(2, Counter(m, VmscanEvent.AllocstallNormal));
        Assert.Equal(0, Counter(m, VmscanEvent.PgscanDirect));
        Assert.False(m.AllocPages(zone, 0, Gfp.Kernel, 0).IsSuccess);
        Assert.Equal(4, Counter(m, VmscanEvent.AllocstallNormal));
    }

    [Fact]
    public void AnAllocationThatDoesNotWakeKswapd_ReclaimsDirectly_AtLeastSwapClusterMax()
    {
        var m = Full();
        var zone = m.Normal();
        const GfpFlags directOnly = GfpFlags.DirectReclaim | GfpFlags.Io | GfpFlags.Fs;
        var listener = m.Tracepoints.Listen(new TraceFilter(TraceFilter.TypeBit(TraceEventType.MmVmscanDirectReclaimBegin) | TraceFilter.TypeBit(TraceEventType.MmVmscanDirectReclaimEnd)), 64);
        var pageoutruns = Counter(m, VmscanEvent.PageOutRun);

        // Below min without waking kswapd: only direct reclaim can serve it.
        while (zone.NrFreePages > zone.Watermarks.Min)
        {
            Assert.True(m.AllocPages(zone, 0, directOnly, 0).IsSuccess);
        }
        Assert.True(m.AllocPages(zone, 0, directOnly, 0).IsSuccess);

        Assert.Equal(pageoutruns, Counter(m, VmscanEvent.PageOutRun));
        Assert.True(Counter(m, VmscanEvent.AllocstallNormal) >= 1);
        Assert.True(Counter(m, VmscanEvent.PgstealDirect) >= PageAllocConstants.SwapClusterMax);
        var events = Drain(listener);
        Assert.Equal("order=0 gfp_flags=__GFP_IO|__GFP_FS|__GFP_DIRECT_RECLAIM", TraceText.Fields(events[0]));
        Assert.Equal(TraceEventType.MmVmscanDirectReclaimEnd, events[1].Type);
        Assert.Matches("^nr_reclaimed=[0-9]+$", TraceText.Fields(events[1]));
        Assert.True(events[1].NrPages >= PageAllocConstants.SwapClusterMax);
        m.AssertConsistent();
    }

    [Fact]
    public void KswapdWakes_BelowTheLowWatermark_AndSleepsOnceTheHighOneIsMet()
    {
        var m = Full(pageCache: Pages - 1000); // fits: free ends below low, not below min
        var zone = m.Normal();
        var runs = Counter(m, VmscanEvent.PageOutRun);
        var listener = m.Tracepoints.Listen(new TraceFilter(TraceFilter.AllTypes), 1 << 16);
        while (Counter(m, VmscanEvent.PageOutRun) == runs)
        {
            m.Alloc("Normal", 0, "GFP_KERNEL"); // until one finds the zone below low: the slow path wakes kswapd
        }

        var kswapd = Drain(listener).Where(e => TraceText.IsVmscan(e.Type) && !e.Type.ToString().Contains("Direct", StringComparison.Ordinal))
            .Select(e => $"{TraceText.Name(e.Type)}: {TraceText.Fields(e)}").ToList();
        Assert.Equal(["mm_vmscan_wakeup_kswapd: nid=0 order=0 gfp_flags=GFP_KERNEL", "mm_vmscan_kswapd_wake: nid=0 order=0", "mm_vmscan_kswapd_sleep: nid=0"], kswapd);
        Assert.True(zone.NrFreePages >= zone.Watermarks.High, $"free {zone.NrFreePages} after kswapd, high {zone.Watermarks.High}");
        Assert.Equal(runs + 1, Counter(m, VmscanEvent.PageOutRun));
    }

    [Fact]
    public void ActivePages_AreDeactivatedWhenTheInactiveListIsLow_ThenReclaimed()
    {
        var m = Full(pageCache: Pages * 3 / 2, active: Pages * 3 / 2);

        Assert.True(Counter(m, VmscanEvent.PgDeactivate) > 0);
        Assert.Equal(Counter(m, VmscanEvent.PgRefill), Counter(m, VmscanEvent.PgDeactivate)); // unmapped page cache: all of it
        Assert.True(Counter(m, VmscanEvent.PgstealKswapd) >= Pages / 2);
        Assert.True(Lru(m, LruList.ActiveFile) > 0);
        m.AssertConsistent();
    }

    [Theory]
    [InlineData(100_000L, 100_000L, false)] // under 1 GiB: ratio 1
    [InlineData(100_000L, 100_001L, true)]
    [InlineData(100_000L, 200_000L, false)] // 300k pages, 1 GiB: ratio int_sqrt(10) = 3, and 300k is not below 200k
    [InlineData(600_000L, 1_700_000L, false)] // 8 GiB: ratio int_sqrt(80) = 8: 4.8M >= 1.7M
    [InlineData(200_000L, 1_700_000L, true)] // 7 GiB: ratio int_sqrt(70) = 8: 1.6M < 1.7M
    public void InactiveIsLow_FollowsTheKernelsRatio(long inactive, long active, bool low)
    {
        var gb = (inactive + active) >> 18;
        var ratio = gb > 0 ? Vmscan.IntSqrt(10 * gb) : 1;

        Assert.Equal(low, inactive * ratio < active);
        Assert.Equal(3, Vmscan.IntSqrt(10));
        Assert.Equal(8, Vmscan.IntSqrt(80));
    }

    [Fact]
    public void DropCaches_FreesThePageCache_WithoutCountingItAsReclaim()
    {
        var m = Full(pageCache: Pages / 2, active: Pages / 8);
        var steal = Counter(m, VmscanEvent.PgstealKswapd) + Counter(m, VmscanEvent.PgstealDirect);

        var freed = m.DropCaches(3, 0);

        Assert.Equal(Pages / 2, freed.Value);
        Assert.Equal(0, Lru(m, LruList.InactiveFile) + Lru(m, LruList.ActiveFile));
        Assert.Equal(steal, Counter(m, VmscanEvent.PgstealKswapd) + Counter(m, VmscanEvent.PgstealDirect));
        Assert.Equal((1L, 1L), (Counter(m, VmscanEvent.DropPagecache), Counter(m, VmscanEvent.DropSlab)));
        Assert.Equal(PageErrorKind.InvalidLength, m.DropCaches(5, 0).Error!.Kind);
        m.AssertConsistent();
    }

    [Fact]
    public void FreeingEverything_ComesBackToTheBootState()
    {
        var m = Full();
        var boot = new Machine(Config());

        m.DropCaches(1, 0);
        m.Normal().DrainPages(null);

        Assert.Equal(ProcFs.BuddyInfo(boot.Stats()), ProcFs.BuddyInfo(m.Stats()));
        m.AssertConsistent();
    }

    [Fact]
    public void AClientsCallOnASystemPage_IsRefused_AndChangesNothing()
    {
        var m = Full(pageCache: Pages / 2);
        var zone = m.Normal();
        var pfn = zone.Allocations(null, zone.StartPfn, 1, out _).Count == 0
            ? zone.StartPfn + Enumerable.Range(0, (int)Pages).First(i => zone.GetPageState(zone.StartPfn + i).Value.Flags.Contains("lru"))
            : throw new InvalidOperationException("the page cache is nobody's allocation: none is listed");
        var before = m.Fingerprint();

        PageError[] refusals =
        [
            zone.FreePages(pfn, 0, 0).Error!,
            zone.GetPage(pfn).Error!,
            zone.PutPage(pfn, 0).Error!,
            zone.SplitPage(pfn, 0).Error!,
            zone.SetHwPoison(pfn).Error!,
            zone.FreeContigRange(pfn, 1, FreeStrategy.Chunked, 0).Error!,
        ];

        Assert.All(refusals, e => Assert.Equal(PageErrorKind.LruPage, e.Kind));
        Assert.Contains("page-cache page of the system's, on zone Normal's inactive_file list", refusals[0].Detail);
        Assert.Equal(before, m.Fingerprint());
    }

    [Fact]
    public void AFork_CarriesTheLruLists_AndBehavesAsTheOriginal()
    {
        var m = Full(active: Pages / 4);
        var fork = m.Fork();

        Assert.Equal(m.Fingerprint(), fork.Fingerprint());
        for (var i = 0; i < 5000; i++)
        {
            Assert.Equal(m.Alloc("Normal", 0).Pfn, fork.Alloc("Normal", 0).Pfn);
        }
        Assert.Equal(m.Fingerprint(), fork.Fingerprint());
        fork.AssertConsistent();
    }

    [Fact]
    public void ARestoredSnapshot_CarriesTheLruLists_AndBehavesAsTheOriginal()
    {
        var m = Full(active: Pages / 4);
        using var buffer = new MemoryStream();
        MachineSnapshot.Write(m, buffer);
        var restored = MachineSnapshot.Read(new MemoryStream(buffer.ToArray()));

        Assert.Equal(m.Fingerprint(), restored.Fingerprint());
        Assert.Equal(Config(2 * Pages, Pages / 4).PageCache.Pages, restored.Config.PageCache.Pages);
        for (var i = 0; i < 5000; i++)
        {
            Assert.Equal(m.Alloc("Normal", 0).Pfn, restored.Alloc("Normal", 0).Pfn);
        }
        Assert.Equal(m.Fingerprint(), restored.Fingerprint());
        restored.AssertConsistent();
    }

    [Fact]
    public void AVersion1Snapshot_IsStillRead_AsAMachineWithoutLruPages()
    {
        var m = TestMachines.Small();
        m.Alloc("Normal", 3);
        using var v1 = new MemoryStream();
        MachineSnapshot.Write(m, v1, 1);

        var restored = MachineSnapshot.Read(new MemoryStream(v1.ToArray()));

        Assert.Equal(1, BitConverter.ToUInt16(v1.ToArray(), 8));
        Assert.Equal(m.Fingerprint(), restored.Fingerprint());
        Assert.Throws<ArgumentOutOfRangeException>(() => MachineSnapshot.Write(Full(), new MemoryStream(), 1));
    }

    [Fact]
    public void RacingClients_AndReclaim_NeverDoubleFreeAPage()
    {
        var m = new Machine(Config(Pages, cpus: 4));
        var zone = m.Normal();
        var stop = DateTime.UtcNow.AddSeconds(2);
        var threads = Enumerable.Range(0, 5).Select(t => new Thread(() =>
        {
            var random = new Random(t);
            var mine = new List<long>();
            while (DateTime.UtcNow < stop)
            {
                switch (t)
                {
                    case 0:
                        m.ReadFilePages(64, active: false, cpu: 0);
                        break;
                    case 1:
                        // A hostile client guessing pfns: every one is refused unless it is its own.
                        zone.FreePages(zone.StartPfn + random.NextInt64(Pages), 0, 1);
                        break;
                    case 4:
                        m.CompactMemory(3); // pages isolated for migration are nobody else's to free
                        break;
                    default:
                        if (mine.Count < 4096 && m.AllocPages(zone, 0, Gfp.Kernel, t) is { IsSuccess: true } r)
                        {
                            mine.Add(r.Value.Pfn);
                        }
                        if (mine.Count > 0 && random.Next(2) == 0)
                        {
                            zone.FreePages(mine[^1], 0, t); // may be refused: the guesser may have freed it first
                            mine.RemoveAt(mine.Count - 1);
                        }
                        break;
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        m.AssertConsistent();
    }

    [Fact]
    public void AnUnmovableFallback_CountsLruPagesAsMovable_AndLeavesTheirPageblockMovable()
    {
        // The same allocations, as page cache (on the LRU) and as a client's pinned pages: 1836 of
        // the zone's 2048 pages, so the last pageblock has fewer than half its pages free.
        static Machine Small() => new(MachineConfig.SingleNode(1, 0, new ZoneConfig { Name = "Normal", StartPfn = 1 << 20, Pages = 2048 }));
        var cache = Small();
        var pinned = Small();
        cache.ReadFilePages(1836, active: false, cpu: 0);
        const GfpFlags readahead = Gfp.HighUserMovable | GfpFlags.NoRetry | GfpFlags.NoWarn;
        for (var i = 0; i < 1836; i++)
        {
            Assert.True(pinned.AllocPages(pinned.Normal(), 0, readahead, 0).IsSuccess);
        }
        cache.Normal().DrainPages(null);
        pinned.Normal().DrainPages(null);
        Assert.Equal(cache.BuddyInfo(), pinned.BuddyInfo());

        cache.Alloc("Normal", 0, "GFP_KERNEL");
        pinned.Alloc("Normal", 0, "GFP_KERNEL");

        // try_to_claim_block(): free + alike pages must be half the pageblock. Pinned pages are
        // alike to an unmovable request (not movable); LRU pages are movable, so not alike.
        var c = cache.Normal().Stats();
        var p = pinned.Normal().Stats();
        // (The pcp refill for the request steals page by page from the block it cannot claim.)
        Assert.Equal(0, c.Event(VmEvent.FallbackClaim));
        Assert.True(c.Event(VmEvent.FallbackSteal) > 0);
        Assert.Equal((1L, 0L), (p.Event(VmEvent.FallbackClaim), p.Event(VmEvent.FallbackSteal)));
        Assert.Equal(0, c.PageblocksByType[(int)MigrateType.Unmovable]);
        Assert.Equal(1, p.PageblocksByType[(int)MigrateType.Unmovable]);
    }

    [Fact]
    public void AllocContigRange_MigratesThePageCacheOutOfTheRange_AndTakesIt()
    {
        var m = new Machine(Config());
        var zone = m.Normal();
        m.ReadFilePages(4096, active: false, cpu: 0); // the zone's first pages
        var cache = m.LruPages(LruList.InactiveFile);
        var range = zone.StartPfn + 1024;

        var taken = zone.AllocContigRange(range, 1024, Gfp.Kernel);

        Assert.True(taken.IsSuccess, taken.Error?.ToString());
        Assert.Equal(cache, m.LruPages(LruList.InactiveFile)); // moved, not dropped
        Assert.Equal(1024, Counter(m, VmscanEvent.PgmigrateSuccess));
        Assert.All(Enumerable.Range(0, 1024), i => Assert.DoesNotContain("lru", zone.GetPageState(range + i).Value.Flags));
        Assert.True(zone.FreeContigRange(range, 1024, FreeStrategy.Chunked, 0).IsSuccess);
        m.AssertConsistent();
    }

    [Fact]
    public void AllocContigRange_OverAPinnedPage_IsBusy_AndMigratesNothing()
    {
        var m = new Machine(Config());
        var zone = m.Normal();
        m.ReadFilePages(2048, active: false, cpu: 0);
        var pinned = m.Alloc("Normal", 0).Pfn;
        m.ReadFilePages(2048, active: false, cpu: 0);
        var before = m.Fingerprint();

        var refused = zone.AllocContigRange(pinned & ~1023L, 1024, Gfp.Kernel);

        Assert.Equal(PageErrorKind.Busy, refused.Error?.Kind);
        Assert.Equal(before, m.Fingerprint());
    }

    private static List<TraceEvent> Drain(TraceListener listener)
    {
        var events = new List<TraceEvent>();
        while (listener.Events.TryRead(out var e))
        {
            events.Add(e);
        }
        return events;
    }
}
