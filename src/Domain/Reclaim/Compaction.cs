using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Reclaim;

/// <summary>enum compact_result, in the kernel's order (try_to_compact_pages() keeps the largest).</summary>
public enum CompactResult
{
    NotSuitableZone,
    Skipped,
    Deferred,
    NoSuitablePage,
    Continue,
    Complete,
    PartialSkipped,
    Contended,
    Success,
}

/// <summary>enum compact_priority: SYNC_FULL (0) scans the whole zone; ASYNC (2) is the first try.</summary>
public enum CompactPriority
{
    SyncFull = 0,
    SyncLight = 1,
    Async = 2,
}

/// <summary>
/// Memory compaction (mm/compaction.c, v6.12-v6.18): compact_zone()'s migration scanner from the
/// zone's start and free scanner from its end, moving the LRU pages the first finds to the free
/// pages the second isolates until they meet or a free block of the order is there; its
/// suitability (compaction_suitable(), fragmentation_index() against extfrag_threshold), deferral,
/// direct compaction for the slow path and /proc/sys/vm/compact_memory.
/// <para>Departures (docs/model.md): no pageblock skip bits (PB_compact_skip) and no fast free-list
/// searches (fast_find_migrateblock(), fast_isolate_freepages()): the scanners walk every block, so
/// they find what the kernel's would and sometimes more; no page capture (the allocation takes the
/// block from the free lists after compaction, as the kernel does without a capture); migration of
/// an isolated page never fails (every LRU page is clean, unmapped, with one reference); no
/// kcompactd or proactive compaction yet.</para>
/// </summary>
public sealed class Compaction
{
    /// <summary>sysctl_extfrag_threshold: 500 by default.</summary>
    public const int ExtfragThreshold = 500;

    /// <summary>COMPACT_MAX_DEFER_SHIFT.</summary>
    public const int MaxDeferShift = 6;

    /// <summary>MAX_COMPACT_RETRIES.</summary>
    public const int MaxCompactRetries = 16;

    private readonly VmscanCounters _counters;
    private readonly Tracepoints _trace;

    internal Compaction(VmscanCounters counters, Tracepoints trace)
    {
        _counters = counters;
        _trace = trace;
    }

    // ---- direct compaction ----

    /// <summary>
    /// try_to_compact_pages(): compact_zone_order() on each zone of the zonelist up to
    /// highest_zoneidx, skipping those deferred for the order (unless at SYNC_FULL), until one
    /// succeeds; a sync attempt that scanned to the end without success defers the zone. Returns the
    /// largest result.
    /// </summary>
    internal CompactResult TryToCompactPages(IReadOnlyList<Zone> zonelist, int order, GfpFlags gfp, AllocFlags alloc, ZoneType highestZoneIdx,
        CompactPriority prio, int cpu)
    {
        var rc = CompactResult.Skipped;
        if ((gfp & GfpFlags.Io) == 0)
        {
            return rc; // gfp_compaction_allowed(): compaction may need I/O
        }
        foreach (var zone in zonelist)
        {
            if (zone.Type > highestZoneIdx)
            {
                continue;
            }
            if (prio > CompactPriority.SyncFull && CompactionDeferred(zone, order))
            {
                rc = Max(rc, CompactResult.Deferred);
                continue;
            }
            var status = CompactZoneOrder(zone, order, gfp, alloc, highestZoneIdx, prio, cpu);
            rc = Max(rc, status);
            if (status == CompactResult.Success)
            {
                CompactionDeferReset(zone, order, allocSuccess: false);
                break;
            }
            if (prio != CompactPriority.Async && status is CompactResult.Complete or CompactResult.PartialSkipped)
            {
                DeferCompaction(zone, order);
            }
        }
        return rc;
    }

    private static CompactResult Max(CompactResult a, CompactResult b) => a > b ? a : b;

    /// <summary>compact_zone_order(): one zone, MIGRATE_ASYNC at the ASYNC priority, MIGRATE_SYNC_LIGHT otherwise; SYNC_FULL scans the whole zone and every block.</summary>
    private CompactResult CompactZoneOrder(Zone zone, int order, GfpFlags gfp, AllocFlags alloc, ZoneType highestZoneIdx, CompactPriority prio, int cpu)
    {
        var cc = new CompactControl(zone, order, Gfp.MigrateTypeOf(gfp), alloc, highestZoneIdx, cpu)
        {
            Sync = prio != CompactPriority.Async,
            DirectCompaction = true,
            WholeZone = prio == CompactPriority.SyncFull,
            IgnoreBlockSuitable = prio == CompactPriority.SyncFull,
        };
        return CompactZone(cc);
    }

    /// <summary>compaction_deferred(): after a failure at this order or above, skip the next 2^defer_shift attempts.</summary>
    internal static bool CompactionDeferred(Zone zone, int order)
    {
        if (order < zone.CompactOrderFailed)
        {
            return false;
        }
        if (++zone.CompactConsidered >= 1 << zone.CompactDeferShift)
        {
            zone.CompactConsidered = 1 << zone.CompactDeferShift;
            return false;
        }
        return true;
    }

    /// <summary>defer_compaction(): double the attempts to skip (up to 2^6) and lower the order that failed.</summary>
    internal static void DeferCompaction(Zone zone, int order)
    {
        zone.CompactConsidered = 0;
        if (++zone.CompactDeferShift > MaxDeferShift)
        {
            zone.CompactDeferShift = MaxDeferShift;
        }
        if (order < zone.CompactOrderFailed)
        {
            zone.CompactOrderFailed = order;
        }
    }

    /// <summary>compaction_defer_reset(): an allocation that succeeded clears the deferral; the failed order rises above this one.</summary>
    internal static void CompactionDeferReset(Zone zone, int order, bool allocSuccess)
    {
        if (allocSuccess)
        {
            zone.CompactConsidered = 0;
            zone.CompactDeferShift = 0;
        }
        if (order >= zone.CompactOrderFailed)
        {
            zone.CompactOrderFailed = order + 1;
        }
    }

    /// <summary>Counts a direct compaction's outcome (__alloc_pages_direct_compact()): a stall, then a success or a failure.</summary>
    internal void CountDirectCompaction(bool success)
    {
        _counters.Add(VmscanEvent.CompactStall, 1);
        _counters.Add(success ? VmscanEvent.CompactSuccess : VmscanEvent.CompactFail, 1);
    }

    // ---- kcompactd ----

    /// <summary>
    /// wakeup_kcompactd(): merge the order and zone into the node's, and (for an order &gt; 0, when
    /// some zone up to the index would be suitable for it) wake kcompactd. Woken by kswapd, it runs
    /// at once, on kswapd's thread; woken from an allocation (wakeup_kswapd()), it runs once that
    /// call is done, as kswapd does (Reclaim/Kswapd.cs). Returns whether it was woken.
    /// </summary>
    internal bool WakeupKcompactd(Kswapd k, int order, int highestZoneIdx, int cpu, bool runNow = true)
    {
        if (order == 0)
        {
            return false;
        }
        lock (k.Lock)
        {
            k.KcompactdMaxOrder = Math.Max(k.KcompactdMaxOrder, order);
            k.KcompactdHighestZoneIdx = Math.Min(k.KcompactdHighestZoneIdx, highestZoneIdx);
        }
        if (Volatile.Read(ref k.KcompactdRunning) != 0 || Volatile.Read(ref k.KcompactdWoken) != 0 || !KcompactdNodeSuitable(k))
        {
            return false; // awake already (it reads the merged values), or nothing it could do
        }
        if (!runNow && Interlocked.CompareExchange(ref k.KcompactdWoken, 1, 0) != 0)
        {
            return false; // a racing wake woke it first: one wake_up, one tracepoint
        }
        if (_trace.Enabled)
        {
            Tracepoints.OnCpu(cpu);
            _trace.Emit(new TraceEvent(TraceEventType.MmCompactionWakeupKcompactd, 0, 0, k.Zones[0].Index, 0, order, 0, Node: k.Node, Status: highestZoneIdx));
        }
        if (runNow)
        {
            RunKcompactd(k, cpu);
        }
        return true;
    }

    /// <summary>kcompactd(), woken: one kcompactd_do_work(), unless another thread runs it for the node.</summary>
    internal void RunKcompactd(Kswapd k, int cpu)
    {
        if (Interlocked.CompareExchange(ref k.KcompactdRunning, 1, 0) != 0)
        {
            return;
        }
        try
        {
            KcompactdDoWork(k, cpu);
        }
        finally
        {
            Volatile.Write(ref k.KcompactdRunning, 0);
        }
    }

    /// <summary>kcompactd_node_suitable(): some zone up to the node's kcompactd zone would compact for its order (CONTINUE).</summary>
    private static bool KcompactdNodeSuitable(Kswapd k) =>
        k.Zones.Any(z => (int)z.Type <= k.KcompactdHighestZoneIdx
            && CompactionSuitAllocationOrder(z, k.KcompactdMaxOrder, (ZoneType)k.KcompactdHighestZoneIdx, AllocFlags.WmarkMin, async: false) == CompactResult.Continue);

    /// <summary>
    /// kcompactd_do_work(): MIGRATE_SYNC_LIGHT compaction, for GFP_KERNEL, of each zone up to the
    /// node's kcompactd zone that is neither deferred nor unsuitable for the order; a zone scanned to
    /// the end without success has its pcp lists drained and is deferred. Counts compact_daemon_*.
    /// </summary>
    private void KcompactdDoWork(Kswapd k, int cpu)
    {
        int order, highest;
        lock (k.Lock)
        {
            order = k.KcompactdMaxOrder;
            highest = k.KcompactdHighestZoneIdx;
        }
        if (_trace.Enabled)
        {
            _trace.Emit(new TraceEvent(TraceEventType.MmCompactionKcompactdWake, 0, 0, k.Zones[0].Index, 0, order, 0, Node: k.Node, Status: highest));
        }
        _counters.Add(VmscanEvent.CompactDaemonWake, 1);
        foreach (var zone in k.Zones)
        {
            if ((int)zone.Type > highest || CompactionDeferred(zone, order)
                || CompactionSuitAllocationOrder(zone, order, (ZoneType)highest, AllocFlags.WmarkMin, async: false) != CompactResult.Continue)
            {
                continue;
            }
            var cc = new CompactControl(zone, order, MigrateType.Unmovable, AllocFlags.WmarkMin, (ZoneType)highest, cpu) { Sync = true };
            var status = CompactZone(cc);
            if (status == CompactResult.Success)
            {
                CompactionDeferReset(zone, order, allocSuccess: false);
            }
            else if (status is CompactResult.PartialSkipped or CompactResult.Complete)
            {
                zone.DrainPages(null); // drain_all_pages(zone): what the run freed to pcp lists may merge
                DeferCompaction(zone, order);
            }
            _counters.Add(VmscanEvent.CompactDaemonMigrateScanned, cc.TotalMigrateScanned);
            _counters.Add(VmscanEvent.CompactDaemonFreeScanned, cc.TotalFreeScanned);
        }
        lock (k.Lock)
        {
            if (k.KcompactdMaxOrder <= order)
            {
                k.KcompactdMaxOrder = 0;
            }
            if (k.KcompactdHighestZoneIdx >= highest)
            {
                k.KcompactdHighestZoneIdx = (int)k.Zones[^1].Type;
            }
        }
    }

    // ---- compact_memory ----

    /// <summary>
    /// Writing 1 to /proc/sys/vm/compact_memory: compact_nodes() -> compact_node() on every zone,
    /// order -1 (compact everything), MIGRATE_SYNC, the whole zone, until the scanners meet.
    /// </summary>
    /// <returns>The pages the runs migrated and the pfns each scanner visited, theirs alone (the machine's counters also count any racing compaction).</returns>
    internal (long Migrated, long MigrateScanned, long FreeScanned) CompactNodes(IReadOnlyList<Zone> zones, int cpu)
    {
        long migrated = 0, migrateScanned = 0, freeScanned = 0;
        foreach (var zone in zones)
        {
            var cc = new CompactControl(zone, -1, MigrateType.Movable, AllocFlags.WmarkMin, ZoneType.Movable, cpu)
            {
                Sync = true,
                WholeZone = true,
                IgnoreBlockSuitable = false,
            };
            CompactZone(cc);
            (migrated, migrateScanned, freeScanned) = (migrated + cc.Migrated, migrateScanned + cc.TotalMigrateScanned, freeScanned + cc.TotalFreeScanned);
        }
        return (migrated, migrateScanned, freeScanned);
    }

    // ---- compact_zone ----

    /// <summary>
    /// compact_zone(): check suitability (for a real order), place the scanners (the cached
    /// positions, or the zone's ends for a whole-zone run), then isolate a batch of LRU pages,
    /// migrate them to isolated free pages, and drain this cpu's pcp after each order-aligned block,
    /// until compact_finished() says otherwise; unused free pages go back at the end. Counts
    /// compact_migrate_scanned, compact_free_scanned; traces mm_compaction_begin and _end.
    /// </summary>
    internal CompactResult CompactZone(CompactControl cc)
    {
        var zone = cc.Zone;
        if (cc.Order != -1)
        {
            var suit = CompactionSuitAllocationOrder(zone, cc.Order, cc.HighestZoneIdx, cc.Alloc, async: !cc.Sync);
            if (suit != CompactResult.Continue)
            {
                return suit;
            }
        }
        var start = zone.StartPfn;
        var end = zone.EndPfn;
        var lastBlock = PageblockStart(end - 1);
        if (cc.WholeZone)
        {
            cc.MigratePfn = start;
            cc.FreePfn = lastBlock;
        }
        else
        {
            cc.MigratePfn = cc.Sync ? zone.CompactCachedMigratePfnSync : zone.CompactCachedMigratePfnAsync;
            cc.FreePfn = zone.CompactCachedFreePfn;
            if (cc.FreePfn < start || cc.FreePfn >= end)
            {
                cc.FreePfn = lastBlock;
                zone.CompactCachedFreePfn = cc.FreePfn;
            }
            if (cc.MigratePfn < start || cc.MigratePfn >= end)
            {
                cc.MigratePfn = start;
                zone.CompactCachedMigratePfnAsync = zone.CompactCachedMigratePfnSync = start;
            }
            if (cc.MigratePfn <= start)
            {
                cc.WholeZone = true; // compact_init_migrate_pfn: the run starts at the zone's start
            }
        }
        if (_trace.Enabled)
        {
            Tracepoints.OnCpu(cc.Cpu);
            _trace.Emit(new TraceEvent(TraceEventType.MmCompactionBegin, 0, 0, zone.Index, start, Math.Max(cc.Order, 0), 0, Flag: cc.Sync,
                MigratePfn: cc.MigratePfn, FreePfn: cc.FreePfn, ZoneEnd: end));
        }
        long lastMigratedPfn = 0;
        CompactResult ret;
        while ((ret = CompactFinished(cc)) == CompactResult.Continue)
        {
            var isolated = IsolateMigratepages(cc);
            if (isolated)
            {
                lastMigratedPfn = Math.Max(start, PageblockStart(cc.MigratePfn - 1));
                if (!MigratePages(cc))
                {
                    if (!ScannersMet(cc))
                    {
                        ret = CompactResult.Contended; // -ENOMEM: no free page left to migrate to
                        break;
                    }
                }
            }
            // check_drain: the pages migrated from an order-aligned block are freed to this cpu's pcp;
            // lru_add_drain_cpu_zone() returns them to the buddy, where they merge, once the scanner is past it.
            if (cc.Order > 0 && lastMigratedPfn != 0 && lastMigratedPfn < (cc.MigratePfn & ~((1L << cc.Order) - 1)))
            {
                zone.DrainPages(cc.Cpu);
                lastMigratedPfn = 0;
            }
        }
        ReleaseFreeList(cc);
        _counters.Add(VmscanEvent.CompactMigrateScanned, cc.TotalMigrateScanned);
        _counters.Add(VmscanEvent.CompactFreeScanned, cc.TotalFreeScanned);
        if (_trace.Enabled)
        {
            _trace.Emit(new TraceEvent(TraceEventType.MmCompactionEnd, 0, 0, zone.Index, start, Math.Max(cc.Order, 0), 0, Flag: cc.Sync,
                MigratePfn: cc.MigratePfn, FreePfn: cc.FreePfn, ZoneEnd: end, Status: (int)ret));
        }
        return ret;
    }

    private static long PageblockStart(long pfn) => pfn & ~((long)PageblockNrPages - 1);

    /// <summary>compact_scanners_met(): the free scanner's pageblock is at or below the migration scanner's.</summary>
    private static bool ScannersMet(CompactControl cc) => cc.FreePfn >> PageblockOrder <= cc.MigratePfn >> PageblockOrder;

    /// <summary>
    /// __compact_finished(): the scanners met (COMPLETE for a whole-zone run, else PARTIAL_SKIPPED,
    /// and the cached positions go back to the zone's ends); compact_memory runs to the end; a
    /// pageblock is always finished; then SUCCESS once a free block of the order (or one a fallback
    /// may claim) is on the request's migratetype's lists, else CONTINUE.
    /// </summary>
    private static CompactResult CompactFinished(CompactControl cc)
    {
        var zone = cc.Zone;
        if (ScannersMet(cc))
        {
            // reset_cached_positions()
            zone.CompactCachedMigratePfnAsync = zone.CompactCachedMigratePfnSync = zone.StartPfn;
            zone.CompactCachedFreePfn = PageblockStart(zone.EndPfn - 1);
            return cc.WholeZone ? CompactResult.Complete : CompactResult.PartialSkipped;
        }
        if (cc.Order == -1 || (cc.MigratePfn & (PageblockNrPages - 1)) != 0)
        {
            return CompactResult.Continue;
        }
        return zone.HasSuitableFreeBlock(cc.Order, cc.MigrateType) ? CompactResult.Success : CompactResult.Continue; // NO_SUITABLE_PAGE reads as CONTINUE
    }

    /// <summary>
    /// compaction_suit_allocation_order(): SUCCESS when the allocation would now succeed; SKIPPED
    /// when an async costly request lacks compact_gap(order) pages above its watermark, or when
    /// compaction_suitable() says so; CONTINUE otherwise.
    /// </summary>
    internal static CompactResult CompactionSuitAllocationOrder(Zone zone, int order, ZoneType highestZoneIdx, AllocFlags alloc, bool async)
    {
        var watermark = zone.Watermarks.Get(alloc);
        if (zone.ZoneWatermarkOk(order, watermark, highestZoneIdx, alloc))
        {
            return CompactResult.Success;
        }
        if (order > PageAllocCostlyOrder && async && !zone.ZoneWatermarkOk(0, watermark + (2L << order), highestZoneIdx, AllocFlags.WmarkMin))
        {
            return CompactResult.Skipped;
        }
        return CompactionSuitable(zone, order, watermark, highestZoneIdx) ? CompactResult.Continue : CompactResult.Skipped;
    }

    /// <summary>
    /// compaction_suitable(): enough free pages to migrate into (the watermark plus compact_gap(order),
    /// and low - min more for a costly order, at order 0), and for a costly order a fragmentation
    /// index outside 0..extfrag_threshold: an index near 0 means the allocation fails for lack of
    /// memory, which reclaim and not compaction can mend.
    /// </summary>
    internal static bool CompactionSuitable(Zone zone, int order, long watermark, ZoneType highestZoneIdx)
    {
        if (!CompactionSuitableFree(zone, order, watermark, highestZoneIdx, zone.NrFreePages))
        {
            return false;
        }
        if (order > PageAllocCostlyOrder)
        {
            var fragindex = Fragmentation.ExtfragIndex(zone.NrFreeByOrder(), order);
            if (fragindex >= 0 && fragindex <= ExtfragThreshold)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>__compaction_suitable(): order-0 free pages above the watermark plus compact_gap(order), and low - min more for a costly order.</summary>
    private static bool CompactionSuitableFree(Zone zone, int order, long watermark, ZoneType highestZoneIdx, long free)
    {
        watermark += 2L << order;
        if (order > PageAllocCostlyOrder)
        {
            watermark += zone.Watermarks.Low - zone.Watermarks.Min;
        }
        return zone.ZoneWatermarkOk(0, watermark, highestZoneIdx, AllocFlags.WmarkMin, free);
    }

    /// <summary>
    /// should_compact_retry(): after SKIPPED, retry while some zone would be suitable with its
    /// reclaimable pages (compaction_zonelist_suitable()); after SUCCESS (whose block a racing
    /// allocation took), up to MAX_COMPACT_RETRIES times (a quarter for a costly order); otherwise,
    /// or past that, raise the priority (lower its number) down to SYNC_FULL (SYNC_LIGHT for a
    /// costly order), each step a retry.
    /// </summary>
    internal static bool ShouldCompactRetry(IReadOnlyList<Zone> zonelist, int order, ZoneType highestZoneIdx, CompactResult result,
        ref CompactPriority priority, ref int retries)
    {
        if (order == 0)
        {
            return false;
        }
        if (result == CompactResult.Skipped)
        {
            foreach (var zone in zonelist)
            {
                if (zone.Type <= highestZoneIdx
                    && CompactionSuitableFree(zone, order, zone.Watermarks.Min, highestZoneIdx, (zone.ReclaimablePages() / order) + zone.NrFreePages))
                {
                    return true;
                }
            }
            return false;
        }
        if (result == CompactResult.Success)
        {
            var maxRetries = order > PageAllocCostlyOrder ? MaxCompactRetries / 4 : MaxCompactRetries;
            if (++retries <= maxRetries)
            {
                return true;
            }
        }
        var minPriority = order > PageAllocCostlyOrder ? CompactPriority.SyncLight : CompactPriority.SyncFull;
        if (priority > minPriority)
        {
            priority--;
            retries = 0;
            return true;
        }
        return false;
    }

    // ---- the migration scanner ----

    /// <summary>
    /// isolate_migratepages(): from the migration scanner, one pageblock at a time below the free
    /// scanner, the first block that may be a source (suitable_migration_source(): async direct
    /// compaction takes only blocks of the request's mobility) is scanned by
    /// isolate_migratepages_block(). Returns whether pages were isolated.
    /// </summary>
    private bool IsolateMigratepages(CompactControl cc)
    {
        var zone = cc.Zone;
        var low = cc.MigratePfn;
        var blockEnd = Math.Min(PageblockStart(low) + PageblockNrPages, zone.EndPfn);
        for (; blockEnd <= cc.FreePfn; low = blockEnd, blockEnd = Math.Min(blockEnd + PageblockNrPages, zone.EndPfn))
        {
            if (!SuitableMigrationSource(cc, zone.IndexOf(low)))
            {
                UpdateCachedMigrate(cc, blockEnd);
                continue;
            }
            low = IsolateMigratepagesBlock(cc, low, blockEnd);
            cc.MigratePfn = low;
            return cc.Migrate.Count > 0;
        }
        cc.MigratePfn = low;
        return false;
    }

    /// <summary>suitable_migration_source(): any block, except for async direct compaction: a movable request's own mobility (Movable), any other's own migratetype.</summary>
    private static bool SuitableMigrationSource(CompactControl cc, int idx)
    {
        if (cc.Sync || !cc.DirectCompaction)
        {
            return true;
        }
        var blockMt = cc.Zone.PageblockMigrateType(idx);
        return cc.MigrateType == MigrateType.Movable ? blockMt == MigrateType.Movable : blockMt == cc.MigrateType;
    }

    /// <summary>update_cached_migrate(): the cached migration position rises to the block's end (the sync one only for a sync run).</summary>
    private static void UpdateCachedMigrate(CompactControl cc, long pfn)
    {
        var zone = cc.Zone;
        pfn = PageblockStart(pfn - 1) + PageblockNrPages;
        if (pfn > zone.CompactCachedMigratePfnAsync)
        {
            zone.CompactCachedMigratePfnAsync = pfn;
        }
        if (cc.Sync && pfn > zone.CompactCachedMigratePfnSync)
        {
            zone.CompactCachedMigratePfnSync = pfn;
        }
    }

    /// <summary>
    /// isolate_migratepages_block(): walk [low, end), skipping free blocks whole, isolating LRU pages
    /// (at the head of the migrate list) until COMPACT_CLUSTER_MAX are; any other page is a failure,
    /// which for async direct compaction gives back what the current order-aligned chunk isolated and
    /// skips to the next chunk. A block walked to its end without isolating moves the cached position
    /// past it. Counts compact_isolated; returns where the walk stopped.
    /// </summary>
    private long IsolateMigratepagesBlock(CompactControl cc, long low, long end)
    {
        var zone = cc.Zone;
        var skipOnFailure = cc.DirectCompaction && !cc.Sync;
        var chunk = cc.Order > 0 ? 1L << cc.Order : 1;
        var nextSkipPfn = skipOnFailure ? (low & ~(chunk - 1)) + chunk : 0;
        long nrScanned = 0, nrIsolated = 0;
        for (; low < end; low++)
        {
            if (skipOnFailure && low >= nextSkipPfn)
            {
                if (nrIsolated > 0)
                {
                    break; // a whole chunk isolated: migrate it now
                }
                nextSkipPfn = (low & ~(chunk - 1)) + chunk;
            }
            nrScanned++;
            var idx = zone.IndexOf(low);
            if (zone.IsBuddyHead(idx, out var freeOrder))
            {
                if (freeOrder > 0)
                {
                    low += (1L << freeOrder) - 1;
                    nrScanned += (1L << freeOrder) - 1;
                }
                continue;
            }
            if (zone.IsolateLruPage(idx, out var lru))
            {
                cc.Migrate.Insert(0, (idx, lru));
                nrIsolated++;
                if (cc.Migrate.Count >= SwapClusterMax)
                {
                    low++;
                    break;
                }
                continue;
            }
            // isolate_fail
            if (!skipOnFailure)
            {
                continue;
            }
            if (nrIsolated > 0)
            {
                PutbackMigratepages(cc);
                nrIsolated = 0;
            }
            if (low < nextSkipPfn)
            {
                low = nextSkipPfn - 1;
                nextSkipPfn += chunk;
            }
        }
        if (low >= end && nrIsolated == 0)
        {
            UpdateCachedMigrate(cc, low);
        }
        cc.TotalMigrateScanned += nrScanned;
        _counters.Add(VmscanEvent.CompactIsolated, nrIsolated);
        return low;
    }

    private static void PutbackMigratepages(CompactControl cc)
    {
        foreach (var (idx, lru) in cc.Migrate)
        {
            cc.Zone.PutbackLruPage(idx, lru);
        }
        cc.Migrate.Clear();
    }

    /// <summary>
    /// migrate_pages() with compaction_alloc(): each isolated page, from the list's head, moves to
    /// the smallest isolated free block (split buddy-style, the upper halves back on their lists),
    /// isolating more free pages when none is left. False when the free scanner found none
    /// (-ENOMEM): the pages not moved go back to their lists. Counts pgmigrate_*; traces
    /// mm_compaction_migratepages.
    /// </summary>
    private bool MigratePages(CompactControl cc)
    {
        long migrated = 0;
        var ok = true;
        while (cc.Migrate.Count > 0)
        {
            var (src, lru) = cc.Migrate[0];
            var dst = CompactionAlloc(cc);
            if (dst < 0)
            {
                ok = false;
                break;
            }
            cc.Migrate.RemoveAt(0);
            cc.Zone.MigrateIsolatedPage(src, dst, lru, cc.Cpu);
            migrated++;
        }
        var failed = cc.Migrate.Count;
        cc.Migrated += migrated;
        PutbackMigratepages(cc);
        _counters.Add(VmscanEvent.PgmigrateSuccess, migrated);
        _counters.Add(VmscanEvent.PgmigrateFail, ok ? 0 : 1);
        if (_trace.Enabled)
        {
            _trace.Emit(new TraceEvent(TraceEventType.MmCompactionMigratepages, 0, 0, cc.Zone.Index, 0, 0, 0, NrPages: migrated, NrFailed: failed));
        }
        return ok;
    }

    /// <summary>compaction_alloc() for an order-0 page: the lowest non-empty order of the isolated free blocks, split; the free scanner runs once if there is none. -1 when none is found.</summary>
    private int CompactionAlloc(CompactControl cc)
    {
        for (var attempt = 0; attempt < 2; attempt++)
        {
            for (var order = 0; order <= MaxPageOrder; order++)
            {
                var list = cc.FreePages[order];
                if (list.Count == 0)
                {
                    continue;
                }
                var idx = list.First!.Value;
                list.RemoveFirst();
                while (order > 0)
                {
                    order--;
                    cc.FreePages[order].AddFirst(idx + (1 << order));
                }
                cc.NrFreePages--;
                return idx;
            }
            if (attempt == 0)
            {
                IsolateFreepages(cc);
            }
        }
        return -1;
    }

    // ---- the free scanner ----

    /// <summary>
    /// isolate_freepages(): from the free scanner's pageblock down to the one above the migration
    /// scanner's, each block that is a suitable target is scanned by isolate_freepages_block() (every
    /// COMPACT_CLUSTER_MAXth pfn for an async run, every pfn once a block gave some), until as many
    /// free pages are isolated as pages wait to migrate.
    /// </summary>
    private void IsolateFreepages(CompactControl cc)
    {
        var zone = cc.Zone;
        var isolateStart = cc.FreePfn;
        var blockStart = PageblockStart(isolateStart);
        var blockEnd = Math.Min(blockStart + PageblockNrPages, zone.EndPfn);
        var low = PageblockStart(cc.MigratePfn) + PageblockNrPages;
        var stride = cc.Sync ? 1 : SwapClusterMax;
        for (; blockStart >= low; blockEnd = blockStart, blockStart -= PageblockNrPages, isolateStart = blockStart)
        {
            var first = Math.Max(blockStart, zone.StartPfn);
            if (!SuitableMigrationTarget(cc, zone.IndexOf(first)))
            {
                continue;
            }
            var scanFrom = Math.Max(isolateStart, first);
            var nrIsolated = IsolateFreepagesBlock(cc, ref scanFrom, blockEnd, stride);
            isolateStart = scanFrom;
            if (isolateStart == blockEnd && blockStart - PageblockNrPages < zone.CompactCachedFreePfn)
            {
                zone.CompactCachedFreePfn = blockStart - PageblockNrPages; // update_pageblock_skip(): the block is done
            }
            if (cc.NrFreePages >= cc.Migrate.Count)
            {
                if (isolateStart >= blockEnd)
                {
                    isolateStart = blockStart - PageblockNrPages; // more may be isolated there next time
                }
                break;
            }
            if (isolateStart < blockEnd)
            {
                break; // isolation failed early (the watermark): do not go on
            }
            stride = nrIsolated > 0 ? 1 : Math.Min(SwapClusterMax, stride << 1);
        }
        cc.FreePfn = isolateStart;
    }

    /// <summary>
    /// suitable_migration_target(): not a block whose first page heads a free block of the order
    /// (pageblock_order for compact_memory) or more, and (unless SYNC_FULL) a Movable block.
    /// </summary>
    private static bool SuitableMigrationTarget(CompactControl cc, int idx)
    {
        if (cc.Zone.IsBuddyHead(idx, out var order) && order >= (cc.Order > 0 ? cc.Order : PageblockOrder))
        {
            return false;
        }
        return cc.IgnoreBlockSuitable || cc.Zone.PageblockMigrateType(idx) == MigrateType.Movable;
    }

    /// <summary>
    /// isolate_freepages_block(): every <paramref name="stride"/>th pfn of [start, end) that heads a
    /// free block is isolated whole (__isolate_free_page(), kept at its order), until enough are;
    /// the watermark's refusal stops the block. Counts compact_isolated; returns the pages isolated.
    /// </summary>
    private int IsolateFreepagesBlock(CompactControl cc, ref long start, long end, int stride)
    {
        var zone = cc.Zone;
        long nrScanned = 0;
        var total = 0;
        var pfn = start;
        for (; pfn < end; pfn += stride)
        {
            nrScanned++;
            var idx = zone.IndexOf(pfn);
            if (!zone.IsBuddyHead(idx, out _))
            {
                continue;
            }
            var order = zone.IsolateFreeBlock(idx);
            if (order < 0)
            {
                break;
            }
            var isolated = 1 << order;
            nrScanned += isolated - 1;
            total += isolated;
            cc.NrFreePages += isolated;
            cc.FreePages[order].AddLast(idx);
            if (cc.Migrate.Count <= cc.NrFreePages)
            {
                pfn += isolated;
                break;
            }
            pfn += isolated - 1;
        }
        start = Math.Min(pfn, end);
        cc.TotalFreeScanned += nrScanned;
        _counters.Add(VmscanEvent.CompactIsolated, total);
        return total;
    }

    /// <summary>release_free_list(): the isolated free blocks not used go back; the cached free position may move back up to the highest.</summary>
    private static void ReleaseFreeList(CompactControl cc)
    {
        long high = 0;
        for (var order = 0; order <= MaxPageOrder; order++)
        {
            foreach (var idx in cc.FreePages[order])
            {
                cc.Zone.ReleaseIsolatedFree(idx, order, cc.Cpu);
                high = Math.Max(high, cc.Zone.StartPfn + idx);
            }
            cc.FreePages[order].Clear();
        }
        cc.NrFreePages = 0;
        if (high != 0 && PageblockStart(high) > cc.Zone.CompactCachedFreePfn)
        {
            cc.Zone.CompactCachedFreePfn = PageblockStart(high); // "only go back, not forward"
        }
    }
}

/// <summary>struct compact_control: one compact_zone() run's request, scanners, isolated pages and counts.</summary>
internal sealed class CompactControl(Zone zone, int order, MigrateType migrateType, AllocFlags alloc, ZoneType highestZoneIdx, int cpu)
{
    public Zone Zone { get; } = zone;

    /// <summary>The order compacted for; -1 compacts everything (compact_memory).</summary>
    public int Order { get; } = order;

    public MigrateType MigrateType { get; } = migrateType;

    public AllocFlags Alloc { get; } = alloc;

    public ZoneType HighestZoneIdx { get; } = highestZoneIdx;

    /// <summary>The cpu whose pcp the migrated pages' sources are freed to.</summary>
    public int Cpu { get; } = cpu;

    /// <summary>MIGRATE_SYNC_LIGHT or MIGRATE_SYNC rather than MIGRATE_ASYNC.</summary>
    public bool Sync { get; init; }

    public bool DirectCompaction { get; init; }

    public bool WholeZone { get; set; }

    public bool IgnoreBlockSuitable { get; init; }

    public long MigratePfn { get; set; }

    public long FreePfn { get; set; }

    /// <summary>cc->migratepages: isolated LRU pages, head first, with the list each came from.</summary>
    public List<(int Idx, LruList Lru)> Migrate { get; } = [];

    /// <summary>cc->freepages[order]: isolated free blocks, each kept at its order.</summary>
    public LinkedList<int>[] FreePages { get; } = [.. Enumerable.Range(0, NrPageOrders).Select(_ => new LinkedList<int>())];

    public long NrFreePages { get; set; }

    public long TotalMigrateScanned { get; set; }

    /// <summary>Pages the run migrated.</summary>
    public long Migrated { get; set; }

    public long TotalFreeScanned { get; set; }
}
