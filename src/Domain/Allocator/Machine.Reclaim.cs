using PageAlloc.Domain.Model;
using PageAlloc.Domain.Reclaim;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// The allocation slow path with reclaim (mm/page_alloc.c, v6.12-v6.18), the page cache the system
// fills memory with, and drop_caches. Reclaim itself is Reclaim/Vmscan.cs.
public sealed partial class Machine
{
    /// <summary>kswapd, direct reclaim and their counters (compaction's among them).</summary>
    public Vmscan Vmscan { get; }

    /// <summary>Direct compaction and compact_memory.</summary>
    public Compaction Compaction { get; }

    /// <summary>
    /// __alloc_pages_slowpath() up to the OOM killer: wake kswapd (wake_all_kswapds()), try at the
    /// min watermark with the allowances gfp_to_alloc_flags() gives; then, on each retry: wake kswapd
    /// again, take __GFP_MEMALLOC's reserves, try again; a request that may not reclaim stops there.
    /// One that may: direct reclaim (<see cref="AllocPagesDirectReclaim"/>), then __GFP_NORETRY and a
    /// costly order without __GFP_RETRY_MAYFAIL stop, and should_reclaim_retry() decides whether to go
    /// round again. At the end, __GFP_NOFAIL with direct reclaim takes its last resort,
    /// ALLOC_MIN_RESERVE (__alloc_pages_cpuset_fallback()); the kernel would then retry for ever,
    /// PageAlloc fails. Direct compaction and the OOM killer are not modelled yet (docs/model.md).
    /// Its own method, so the fast path pays nothing for it.
    /// </summary>
    private AllocatedBlock? AllocPagesSlowpath(
        Zone[] zonelist, int order, MigrateType mt, ZoneType gfpZone, GfpFlags gfp, int cpu, Memcg? charged)
    {
        var canDirectReclaim = (gfp & GfpFlags.DirectReclaim) != 0;
        var costly = order > PageAllocCostlyOrder;
        var alloc = SlowpathAllocFlags(gfp, order);
        var kswapd = (gfp & GfpFlags.KswapdReclaim) != 0;
        var canCompact = (gfp & GfpFlags.Io) != 0; // gfp_compaction_allowed()
        var pfmemalloc = (gfp & GfpFlags.MemAlloc) != 0 && (gfp & GfpFlags.NoMemAlloc) == 0;
        if (kswapd)
        {
            WakeAllKswapds(zonelist, order, gfp, gfpZone);
        }
        if (GetPageFromFreelist(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged) is { } first)
        {
            return first;
        }
        var compactPriority = CompactPriority.SyncLight; // DEF_COMPACT_PRIORITY
        var compactResult = CompactResult.Skipped;
        var compactionRetries = 0;
        if (canDirectReclaim && canCompact && (costly || (order > 0 && mt != MigrateType.Movable)) && !pfmemalloc)
        {
            // Costly orders, and unmovable ones that would fragment, try async compaction before reclaim.
            if (AllocPagesDirectCompact(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged, CompactPriority.Async, out compactResult) is { } compacted)
            {
                return compacted;
            }
            if (costly && (gfp & GfpFlags.NoRetry) != 0)
            {
                if (compactResult is CompactResult.Skipped or CompactResult.Deferred)
                {
                    return NoPage(zonelist, order, mt, gfpZone, gfp, cpu, charged, canDirectReclaim);
                }
                compactPriority = CompactPriority.Async; // a THP fault tries no harder than async
            }
        }
        var noProgressLoops = 0;
        // Bound on purpose: should_reclaim_retry() stops after MAX_RECLAIM_RETRIES rounds without
        // progress, and each round with progress frees pages this allocation could take; the bound
        // only keeps a pathological machine from spinning.
        for (var round = 0; round < 64 * MaxReclaimRetries; round++)
        {
            if (kswapd)
            {
                WakeAllKswapds(zonelist, order, gfp, gfpZone);
            }
            if ((gfp & GfpFlags.MemAlloc) != 0 && (gfp & GfpFlags.NoMemAlloc) == 0)
            {
                alloc = AllocFlags.NoWatermarks | (alloc & AllocFlags.Kswapd); // reserve_flags: every later attempt ignores the watermarks
            }
            if (GetPageFromFreelist(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged) is { } block)
            {
                return block;
            }
            if (!canDirectReclaim)
            {
                return null;
            }
            if (AllocPagesDirectReclaim(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged, out var progress) is { } reclaimed)
            {
                return reclaimed;
            }
            if (AllocPagesDirectCompact(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged, compactPriority, out compactResult) is { } compacted)
            {
                return compacted;
            }
            if ((gfp & GfpFlags.NoRetry) != 0 || (costly && (!canCompact || (gfp & GfpFlags.RetryMayFail) == 0)))
            {
                break;
            }
            if (ShouldReclaimRetry(zonelist, order, mt, alloc, gfpZone, progress > 0, ref noProgressLoops))
            {
                continue;
            }
            // Compaction needs free memory to work with: retrying it makes sense only while reclaim makes progress.
            if (!(progress > 0 && canCompact && Compaction.ShouldCompactRetry(zonelist, order, gfpZone, compactResult, ref compactPriority, ref compactionRetries)))
            {
                break;
            }
        }
        return NoPage(zonelist, order, mt, gfpZone, gfp, cpu, charged, canDirectReclaim);
    }

    /// <summary>nopage: __GFP_NOFAIL with direct reclaim takes its last resort, ALLOC_MIN_RESERVE (__alloc_pages_cpuset_fallback()); then the allocation fails.</summary>
    private static AllocatedBlock? NoPage(Zone[] zonelist, int order, MigrateType mt, ZoneType gfpZone, GfpFlags gfp, int cpu, Memcg? charged, bool canDirectReclaim) =>
        (gfp & GfpFlags.NoFail) != 0 && canDirectReclaim
            ? GetPageFromFreelist(zonelist, order, mt, AllocFlags.WmarkMin | AllocFlags.MinReserve, gfpZone, gfp, cpu, charged)
            : null;

    /// <summary>
    /// __alloc_pages_direct_compact(): try_to_compact_pages() at the priority; unless it was
    /// skipped, a compaction stall is counted and the allocation tried again, a success clearing the
    /// zone's deferral (compact_success) and a failure counting compact_fail. Order 0 never compacts.
    /// </summary>
    private AllocatedBlock? AllocPagesDirectCompact(Zone[] zonelist, int order, MigrateType mt, AllocFlags alloc, ZoneType gfpZone, GfpFlags gfp, int cpu,
        Memcg? charged, CompactPriority priority, out CompactResult result)
    {
        result = CompactResult.Skipped;
        if (order == 0)
        {
            return null;
        }
        result = Compaction.TryToCompactPages(zonelist, order, gfp, alloc, gfpZone, priority, cpu);
        if (result == CompactResult.Skipped)
        {
            return null;
        }
        var block = GetPageFromFreelist(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged);
        if (block is { } b)
        {
            Reclaim.Compaction.CompactionDeferReset(b.Zone, order, allocSuccess: true);
        }
        Compaction.CountDirectCompaction(block is not null);
        return block;
    }

    /// <summary>
    /// Writing 1 to /proc/sys/vm/compact_memory: every zone compacted whole (compact_nodes()), the
    /// migrated pages' sources freed to <paramref name="cpu"/>'s pcp. Answers the machine's free
    /// blocks per order before and after, and what the run itself migrated and scanned.
    /// </summary>
    public PageResult<CompactMemoryResult> CompactMemory(int cpu)
    {
        if (_zones[0].CheckCpu(cpu) is { } cpuError)
        {
            return cpuError;
        }
        var before = FreeBlocksByOrder();
        var (migrated, migrateScanned, freeScanned) = Compaction.CompactNodes(_zones, cpu);
        return new CompactMemoryResult(before, FreeBlocksByOrder(), migrated, migrateScanned, freeScanned);
    }

    /// <summary>nr_free per order summed over the zones, read without locks as /proc/buddyinfo's counters are.</summary>
    private long[] FreeBlocksByOrder()
    {
        var blocks = new long[NrPageOrders];
        foreach (var zone in _zones)
        {
            var nrFree = zone.NrFreeByOrder();
            for (var order = 0; order < NrPageOrders; order++)
            {
                blocks[order] += nrFree[order];
            }
        }
        return blocks;
    }

    /// <summary>wake_all_kswapds(): wakeup_kswapd() for each node of the zonelist once, with its first zone up to highest_zoneidx.</summary>
    private void WakeAllKswapds(Zone[] zonelist, int order, GfpFlags gfp, ZoneType highestZoneIdx)
    {
        var lastNode = -1;
        foreach (var zone in zonelist)
        {
            if (zone.Type > highestZoneIdx || zone.NodeId == lastNode)
            {
                continue;
            }
            lastNode = zone.NodeId;
            Vmscan.WakeupKswapd(zone, gfp, order, highestZoneIdx);
        }
    }

    /// <summary>
    /// __alloc_pages_direct_reclaim(): try_to_free_pages(); with progress, try again, and if that
    /// fails, give back a highatomic block (unforced: a zone keeps its last) and drain every pcp
    /// (drain_all_pages()), then try once more.
    /// </summary>
    private AllocatedBlock? AllocPagesDirectReclaim(
        Zone[] zonelist, int order, MigrateType mt, AllocFlags alloc, ZoneType gfpZone, GfpFlags gfp, int cpu, Memcg? charged, out long progress)
    {
        progress = Vmscan.TryToFreePages(zonelist, order, gfp, gfpZone, cpu);
        if (progress == 0)
        {
            return null;
        }
        if (GetPageFromFreelist(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged) is { } block)
        {
            return block;
        }
        UnreserveHighatomicPageblock(zonelist, gfpZone, mt, force: false);
        DrainAllPages();
        return GetPageFromFreelist(zonelist, order, mt, alloc, gfpZone, gfp, cpu, charged);
    }

    /// <summary>drain_all_pages(NULL): every cpu's pcp lists of every zone back to the buddy.</summary>
    private void DrainAllPages()
    {
        foreach (var zone in _zones)
        {
            zone.DrainPages(null);
        }
    }

    /// <summary>
    /// should_reclaim_retry(): progress on an order up to PAGE_ALLOC_COSTLY_ORDER resets the count
    /// of rounds without progress, anything else adds one; past MAX_RECLAIM_RETRIES, or when no zone
    /// of the zonelist would meet its min watermark with its reclaimable pages freed
    /// (zone_reclaimable_pages() + NR_FREE_PAGES), the highatomic reserve is given back block by
    /// block (unreserve_highatomic_pageblock(ac, true)) before the allocation fails, each block
    /// buying one more round.
    /// </summary>
    private static bool ShouldReclaimRetry(
        Zone[] zonelist, int order, MigrateType mt, AllocFlags alloc, ZoneType highestZoneIdx, bool didSomeProgress, ref int noProgressLoops)
    {
        if (didSomeProgress && order <= PageAllocCostlyOrder)
        {
            noProgressLoops = 0;
        }
        else
        {
            noProgressLoops++;
        }
        if (noProgressLoops <= MaxReclaimRetries)
        {
            foreach (var zone in zonelist)
            {
                if (zone.Type > highestZoneIdx)
                {
                    continue;
                }
                var available = zone.ReclaimablePages() + zone.NrFreePages;
                if (zone.ZoneWatermarkOk(order, zone.Watermarks.Min, highestZoneIdx, alloc, available))
                {
                    return true;
                }
            }
        }
        return UnreserveHighatomicPageblock(zonelist, highestZoneIdx, mt, force: true);
    }

    // ---- the system's page cache ----

    /// <summary>
    /// The system reads <paramref name="pages"/> pages of files (filemap_read() -> page_cache_ra_*):
    /// each is filemap_alloc_folio() with readahead_gfp_mask() (GFP_HIGHUSER_MOVABLE | __GFP_NORETRY |
    /// __GFP_NOWARN), an order-0 folio, then folio_add_lru() onto the inactive file list of its zone;
    /// <paramref name="active"/> reads refaults of the working set, which workingset_refault()
    /// activates (the active file list). The allocations wake kswapd and reclaim older page cache as
    /// any would, so a machine that reads more than it has settles between its watermarks. Stops at
    /// the first allocation that fails. <paramref name="preferred"/> is the zone the reads prefer (the
    /// highest zone of node 0 when null).
    /// </summary>
    public PageResult<PageCacheRead> ReadFilePages(long pages, bool active, int cpu, Zone? preferred = null) =>
        AddSystemPages(pages, active ? LruList.ActiveFile : LruList.InactiveFile, Gfp.HighUserMovable | GfpFlags.NoRetry | GfpFlags.NoWarn, cpu, preferred);

    /// <summary>
    /// The system's processes fault in <paramref name="pages"/> pages of anonymous memory
    /// (do_anonymous_page() -> vma_alloc_folio(GFP_HIGHUSER_MOVABLE), an order-0 folio, then
    /// folio_add_lru_vma() onto the inactive anon list). Without swap reclaim never takes them, but
    /// compaction and alloc_contig_range() move them. Stops at the first allocation that fails (the
    /// kernel would OOM-kill).
    /// </summary>
    public PageResult<PageCacheRead> FaultAnonPages(long pages, int cpu, Zone? preferred = null) =>
        AddSystemPages(pages, LruList.InactiveAnon, Gfp.HighUserMovable, cpu, preferred);

    private PageResult<PageCacheRead> AddSystemPages(long pages, LruList lru, GfpFlags gfp, int cpu, Zone? preferred)
    {
        var most = 4 * _zones.Sum(z => z.ManagedPages);
        if (pages < 0 || pages > most)
        {
            return new PageError(PageErrorKind.InvalidLength, $"pages must be 0..{most} (four times the machine's pages), not {pages}.");
        }
        if (_zones[0].CheckCpu(cpu) is { } cpuError)
        {
            return cpuError;
        }
        var zone = preferred ?? _zones.Where(z => z.NodeId == _zones[0].NodeId).MaxBy(z => z.Type)!;
        long read = 0;
        var before = Vmscan.Counters.Read();
        for (; read < pages; read++)
        {
            var result = AllocPages(zone, 0, gfp, cpu);
            if (!result.IsSuccess)
            {
                break;
            }
            var block = result.Value;
            if (!block.Zone.AddToLru(block.Pfn, lru))
            {
                break; // a client freed it meanwhile (it could only guess the pfn): stop rather than miscount
            }
        }
        var after = Vmscan.Counters.Read();
        return new PageCacheRead(read, pages - read,
            after[(int)VmscanEvent.PgstealKswapd] - before[(int)VmscanEvent.PgstealKswapd],
            after[(int)VmscanEvent.PgstealDirect] - before[(int)VmscanEvent.PgstealDirect]);
    }

    /// <summary>
    /// Writing <paramref name="value"/> (1..4) to /proc/sys/vm/drop_caches: 1 frees the page cache,
    /// 2 slab (none here), 3 both, 4 only silences the kernel's log line.
    /// </summary>
    public PageResult<long> DropCaches(int value, int cpu)
    {
        if (value is < 1 or > 4)
        {
            return new PageError(PageErrorKind.InvalidLength, $"drop_caches takes 1..4 (proc_dointvec_minmax), not {value}.");
        }
        if (_zones[0].CheckCpu(cpu) is { } cpuError)
        {
            return cpuError;
        }
        return Vmscan.DropCaches(_zones, value, cpu);
    }

    /// <summary>The machine's LRU pages per list, summed over zones (the node stats nr_inactive_file and friends).</summary>
    public long LruPages(LruList lru) => _zones.Sum(z => z.LruPages(lru));
}

/// <summary>What compact_memory did: the machine's free blocks per order before and after, the pages it migrated and the pfns each scanner visited.</summary>
public sealed record CompactMemoryResult(long[] FreeBlocksBefore, long[] FreeBlocksAfter, long Migrated, long MigrateScanned, long FreeScanned);

/// <summary>What a page-cache read did: the pages read, those not read (an allocation failed), and what reclaim freed meanwhile.</summary>
public readonly record struct PageCacheRead(long Read, long NotRead, long ReclaimedByKswapd, long ReclaimedDirectly);
