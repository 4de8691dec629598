using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// What compaction (Reclaim/Compaction.cs) does to one zone's pages: the free scanner's isolation of
// free blocks, the migration scanner's isolation of LRU pages, the move of an isolated page to an
// isolated free page, and giving back what was not used; and the zone's compaction state
// (struct zone's compact_* fields). Each primitive takes the lock the kernel's takes for it:
// zone->lock for the free lists, RefLock (which holds lru_lock's place) for the LRU and refcounts.
// An isolated page is on no list and in no block the checker knows; it exists only inside a
// compaction, which never ends a call with one.
public sealed partial class Zone
{
    // zone->compact_cached_free_pfn, compact_cached_migrate_pfn[ASYNC], [SYNC]: where the scanners
    // stopped, so the next compaction goes on from there. 0 until the first compaction (out of the
    // zone: compact_zone() resets them to the zone's ends).
    internal long CompactCachedFreePfn;
    internal long CompactCachedMigratePfnAsync;
    internal long CompactCachedMigratePfnSync;

    // zone->compact_considered, compact_defer_shift, compact_order_failed (defer_compaction()).
    internal int CompactConsidered;
    internal int CompactDeferShift;
    internal int CompactOrderFailed;

    /// <summary>The machine's migration counters (pgmigrate_success), for alloc_contig_range()'s migrations; set by the machine.</summary>
    internal Reclaim.VmscanCounters? MigrationCounters { get; set; }

    /// <summary>The page heads a free buddy block; its order is in <paramref name="order"/>.</summary>
    internal bool IsBuddyHead(int idx, out int order)
    {
        order = Order[idx];
        return (Flags[idx] & (byte)PageFlags.Buddy) != 0;
    }

    /// <summary>
    /// __isolate_free_page() for the free scanner: take the free block headed at
    /// <paramref name="idx"/> off its list, if the zone stays above min + the block's pages
    /// (zone_watermark_ok(zone, 0, min + (1 &lt;&lt; order), 0, ALLOC_CMA); not checked for an
    /// isolated pageblock); a block of at least half a pageblock makes its mergeable pageblocks
    /// Movable. Returns the block's order, or -1 (nothing taken) when it is no longer free or the
    /// watermark refuses. Takes zone->lock.
    /// </summary>
    internal int IsolateFreeBlock(int idx)
    {
        using var _ = ZoneLock.Enter();
        if ((Flags[idx] & (byte)PageFlags.Buddy) == 0)
        {
            return -1;
        }
        int order = Order[idx];
        var mt = PageblockMigrateType(idx);
        if (mt != MigrateType.Isolate && !ZoneWatermarkOk(0, BaseWatermarks.Min + (1L << order), ZoneType.Dma, AllocFlags.WmarkMin))
        {
            return -1;
        }
        DelFromFreeList(idx, order, mt);
        if (order >= PageblockOrder - 1)
        {
            for (var block = idx; block < idx + (1 << order); block += PageblockNrPages)
            {
                var blockMt = PageblockMigrateType(block);
                if (MigrateTypes.IsMergeable(blockMt) && blockMt != MigrateType.Movable)
                {
                    MoveFreepagesBlock(block, blockMt, MigrateType.Movable);
                }
            }
        }
        return order;
    }

    /// <summary>
    /// The LRU part of isolate_migratepages_block() for one page: a page on an LRU list with only
    /// the list's reference (folio_test_clear_lru(), lruvec_del_folio()) leaves it, still allocated,
    /// for migration. False for any other page (a client's pinned pages among them). Takes RefLock.
    /// </summary>
    internal bool IsolateLruPage(int idx, out LruList lru)
    {
        using var _ = RefLock.Enter();
        if (Flags[idx] != (byte)(PageFlags.Allocated | PageFlags.Lru) || RefCount[idx] != 1 || LruOf(idx) is not { } on)
        {
            lru = default;
            return false;
        }
        UnlinkLru(idx, on);
        Flags[idx] = (byte)(PageFlags.Allocated | PageFlags.Isolated);
        lru = on;
        return true;
    }

    /// <summary>putback_movable_pages() for one page: back to the head of its list (folio_putback_lru()). Takes RefLock.</summary>
    internal void PutbackLruPage(int idx, LruList lru)
    {
        using var _ = RefLock.Enter();
        RelistLru(idx, lru);
    }

    private void RelistLru(int idx, LruList lru)
    {
        Flags[idx] = (byte)(PageFlags.Allocated | PageFlags.Lru);
        _lruOf![idx] = (byte)(lru + 1);
        _lru.AddHead((int)lru, idx);
        _lruPages[(int)lru]++;
    }

    /// <summary>
    /// migrate_pages() of one isolated order-0 LRU page to an isolated free page of the zone:
    /// __migrate_folio() copies the contents and moves the mapping (the page cache's reference) to
    /// <paramref name="dst"/>, migrate_folio_move() adds it to the head of the same LRU list
    /// (folio_add_lru()), and the source's last reference goes (mm_page_free), freeing it to this
    /// cpu's pcp. Takes RefLock.
    /// </summary>
    internal void MigrateIsolatedPage(int src, int dst, LruList lru, int cpu)
    {
        var tracing = _trace.Enabled;
        using (RefLock.Enter())
        {
            RefCount[dst] = 1; // post_alloc_hook() + set_page_refcounted(): the copy's one reference
            Order[dst] = 0;
            RelistLru(dst, lru);
            RefCount[src] = 0;
            Flags[src] = (byte)PageFlags.Allocated;
            PrepareFree(src, 0, compound: false, tracing);
        }
        FreeFrozenPages(src, 0, cpu);
    }

    /// <summary>release_free_list() for one isolated free block: __free_pages() gives it back (mm_page_free, then the pcp or the buddy).</summary>
    internal void ReleaseIsolatedFree(int idx, int order, int cpu)
    {
        if (_trace.Enabled)
        {
            _trace.Emit(TraceEventType.MmPageFree, Index, PfnOf(idx), order, 0);
        }
        FreeFrozenPages(idx, order, cpu);
    }

    /// <summary>
    /// The free-list part of __compact_finished(): a free block of the order or above on the
    /// migratetype's list, or one a fallback could claim (find_suitable_fallback(..., true)).
    /// Read without zone->lock, as the kernel's check is.
    /// </summary>
    internal bool HasSuitableFreeBlock(int order, MigrateType mt)
    {
        for (var o = order; o <= MaxPageOrder; o++)
        {
            if (!FreeListEmpty(o, FreeListId(o, mt)) || FindSuitableFallback(o, mt, claimable: true) >= 0)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>nr_free per order, for fragmentation_index().</summary>
    internal long[] NrFreeByOrder()
    {
        var nrFree = new long[NrPageOrders];
        for (var o = 0; o < NrPageOrders; o++)
        {
            nrFree[o] = Volatile.Read(ref _nrFree[o]);
        }
        return nrFree;
    }

    /// <summary>The compaction state a fork or snapshot carries: the cached scanner positions and deferral.</summary>
    internal long[] CompactionState() =>
        [CompactCachedFreePfn, CompactCachedMigratePfnAsync, CompactCachedMigratePfnSync, CompactConsidered, CompactDeferShift, CompactOrderFailed];

    internal void RestoreCompactionState(ReadOnlySpan<long> s)
    {
        CompactCachedFreePfn = s[0];
        CompactCachedMigratePfnAsync = s[1];
        CompactCachedMigratePfnSync = s[2];
        CompactConsidered = (int)s[3];
        CompactDeferShift = (int)s[4];
        CompactOrderFailed = (int)s[5];
    }
}
