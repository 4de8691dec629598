using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// The buddy free lists: zone->free_area[order].free_list[migratetype]. Everything here runs with
// zone->lock held.
public sealed partial class Zone
{
    private static int FreeListId(int order, MigrateType mt) => (order * MigrateTypes.Count) + (int)mt;

    // The free lists of one order live in one of two list sets (see _maxOrderLists); these pick it.
    private bool FreeListEmpty(int order, int list) =>
        order == MaxPageOrder ? _maxOrderLists.IsEmpty(list) : _freeLists.IsEmpty(list);

    private int FreeListFirst(int order, int list) =>
        order == MaxPageOrder ? _maxOrderLists.First(list) : _freeLists.First(list);

    private int FreeListNext(int order, int idx) =>
        order == MaxPageOrder ? _maxOrderLists.Next(idx) : _freeLists.Next(idx);

    private int FreeListPrev(int order, int idx) =>
        order == MaxPageOrder ? _maxOrderLists.Prev(idx) : _freeLists.Prev(idx);

    private void FreeListAdd(int order, int list, int idx, bool toTail)
    {
        if (order == MaxPageOrder)
        {
            if (toTail)
            {
                _maxOrderLists.AddTail(list, idx);
            }
            else
            {
                _maxOrderLists.AddHead(list, idx);
            }
        }
        else if (toTail)
        {
            _freeLists.AddTail(list, idx);
        }
        else
        {
            _freeLists.AddHead(list, idx);
        }
    }

    private void FreeListRemove(int order, int list, int idx)
    {
        if (order == MaxPageOrder)
        {
            _maxOrderLists.Remove(list, idx);
        }
        else
        {
            _freeLists.Remove(list, idx);
        }
    }

    /// <summary>__add_to_free_list() + set_buddy_order() + account_freepages().</summary>
    private void AddToFreeList(int idx, int order, MigrateType mt, bool toTail)
    {
        Flags[idx] = (byte)PageFlags.Buddy;
        Order[idx] = (byte)order;
        var list = FreeListId(order, mt);
        FreeListAdd(order, list, idx, toTail);
        _nrFree[order]++;
        _nrFreeByType[list]++;
        _freePages += 1L << order;
        if (mt == MigrateType.HighAtomic)
        {
            _freeHighatomicPages += 1L << order; // account_freepages(): zone->nr_free_highatomic
        }
    }

    /// <summary>del_page_from_free_list(): unlink, clear PageBuddy, account.</summary>
    private void DelFromFreeList(int idx, int order, MigrateType mt)
    {
        var list = FreeListId(order, mt);
        FreeListRemove(order, list, idx);
        Flags[idx] = (byte)PageFlags.None;
        _nrFree[order]--;
        _nrFreeByType[list]--;
        _freePages -= 1L << order;
        if (mt == MigrateType.HighAtomic)
        {
            _freeHighatomicPages -= 1L << order;
        }
    }

    /// <summary>move_to_free_list(): list_move_tail() to another type's list.</summary>
    private void MoveToFreeList(int idx, int order, MigrateType from, MigrateType to)
    {
        var oldList = FreeListId(order, from);
        var newList = FreeListId(order, to);
        FreeListRemove(order, oldList, idx);
        FreeListAdd(order, newList, idx, toTail: true);
        _nrFreeByType[oldList]--;
        _nrFreeByType[newList]++;
        _freeHighatomicPages += (to == MigrateType.HighAtomic ? 1L << order : 0) - (from == MigrateType.HighAtomic ? 1L << order : 0);
    }

    /// <summary>page_is_buddy(): the page at idx heads a free block of exactly this order in this zone.</summary>
    private bool IsBuddyAt(long idx, int order) =>
        idx >= 0 && idx < SpannedPages
        && (Flags[idx] & (byte)PageFlags.Buddy) != 0
        && Order[idx] == order;

    /// <summary>
    /// __free_one_page(): merge with the buddy (pfn ^ (1 &lt;&lt; order)) while it is free and of the
    /// same order, up to MAX_PAGE_ORDER and never across the zone's ends; above pageblock_order only
    /// mergeable migratetypes merge. The result goes to the tail of its list when a merge with the
    /// next buddy up looks likely (buddy_merge_likely()), or when the caller asks (FPI_TO_TAIL).
    /// </summary>
    private void FreeOnePageCore(int idx, int order, MigrateType mt, bool toTail)
    {
        AssertZoneLocked();
        var pfn = StartPfn + idx;
        long buddyPfn = 0;
        while (order < MaxPageOrder)
        {
            buddyPfn = pfn ^ (1L << order);
            var buddyIdx = idx + (buddyPfn - pfn);
            if (!IsBuddyAt(buddyIdx, order))
            {
                break;
            }
            var buddyMt = PageblockMigrateType((int)buddyIdx);
            if (order >= PageblockOrder && mt != buddyMt
                && (!MigrateTypes.IsMergeable(mt) || !MigrateTypes.IsMergeable(buddyMt)))
            {
                break;
            }
            DelFromFreeList((int)buddyIdx, order, buddyMt);
            Order[(int)buddyIdx] = 0; // whichever of the two heads ends up inside the block keeps no order
            Order[idx] = 0;
            if (buddyMt != mt)
            {
                // Match the buddy's pageblock to ours, so that a later expand() puts the halves on
                // the right lists (only reachable at order == pageblock_order).
                ChangePageblockRange((int)buddyIdx, order, mt);
            }
            var combined = buddyPfn & pfn;
            idx += (int)(combined - pfn);
            pfn = combined;
            order++;
        }
        AddToFreeList(idx, order, mt, toTail || BuddyMergeLikely(pfn, buddyPfn, order));
    }

    /// <summary>buddy_merge_likely(): would the block one order up merge with its own buddy?</summary>
    private bool BuddyMergeLikely(long pfn, long buddyPfn, int order)
    {
        if (order >= MaxPageOrder - 1)
        {
            return false;
        }
        var higherPfn = buddyPfn & pfn;
        var higherBuddyPfn = higherPfn ^ (1L << (order + 1));
        return IsBuddyAt(higherBuddyPfn - StartPfn, order + 1);
    }

    /// <summary>
    /// free_one_page() with the zone lock already held: split_large_buddy() frees a block above
    /// pageblock_order one pageblock at a time, each with its own migratetype.
    /// </summary>
    private void SplitLargeBuddy(int idx, int order, bool toTail)
    {
        var chunkOrder = Math.Min(order, PageblockOrder);
        var end = idx + (1 << order);
        do
        {
            FreeOnePageCore(idx, chunkOrder, PageblockMigrateType(idx), toTail);
            idx += 1 << chunkOrder;
        }
        while (idx < end);
        _freesByOrder[order]++; // pgfree is derived from it
    }

    /// <summary>free_one_page(): take zone->lock and free a block straight to the buddy.</summary>
    internal void FreeOnePage(int idx, int order)
    {
        using var _ = ZoneLock.Enter();
        SplitLargeBuddy(idx, order, toTail: false);
    }

    /// <summary>expand(): split a block of order high down to low, giving the upper halves back.</summary>
    private void Expand(int idx, int low, int high, MigrateType mt)
    {
        var size = 1 << high;
        while (high > low)
        {
            high--;
            size >>= 1;
            AddToFreeList(idx + size, high, mt, toTail: false);
        }
    }

    /// <summary>__rmqueue_smallest(): the first block of the smallest order that fits, split down.</summary>
    private int RmqueueSmallest(int order, MigrateType mt)
    {
        for (var current = order; current <= MaxPageOrder; current++)
        {
            var list = FreeListId(current, mt);
            if (FreeListEmpty(current, list))
            {
                continue;
            }
            var idx = FreeListFirst(current, list);
            DelFromFreeList(idx, current, mt);
            Expand(idx, order, current, mt);
            if (_trace.Enabled)
            {
                _trace.Emit(TraceEventType.MmPageAllocZoneLocked, Index, PfnOf(idx), order, (int)mt,
                    flag: PcpAllowedOrder(order) && MigrateTypes.IsMergeable(mt)); // pcp_allowed_order(order) && mt < MIGRATE_PCPTYPES
            }
            return idx;
        }
        return IntrusiveLists.Nil;
    }

    /// <summary>
    /// __rmqueue(): the requested type first, then __rmqueue_claim() (take over a pageblock of a
    /// fallback type), then __rmqueue_steal() (take one block without claiming), as in v6.15+.
    /// </summary>
    private int RmqueueCore(int order, MigrateType mt, AllocFlags alloc)
    {
        var idx = RmqueueSmallest(order, mt);
        if (idx >= 0)
        {
            return idx;
        }
        idx = RmqueueClaim(order, mt, alloc);
        if (idx >= 0 || (alloc & AllocFlags.NoFragment) != 0)
        {
            return idx;
        }
        return RmqueueSteal(order, mt);
    }

    /// <summary>should_try_claim_block().</summary>
    private static bool ShouldTryClaimBlock(int order, MigrateType startMt) =>
        order >= PageblockOrder
        || order >= PageblockOrder / 2
        || startMt is MigrateType.Reclaimable or MigrateType.Unmovable;

    /// <summary>find_suitable_fallback(): -1 none at this order, -2 too small to claim.</summary>
    private int FindSuitableFallback(int order, MigrateType mt, bool claimable)
    {
        if (claimable && !ShouldTryClaimBlock(order, mt))
        {
            return -2;
        }
        if (_nrFree[order] == 0)
        {
            return -1;
        }
        foreach (var fallback in MigrateTypes.Fallbacks(mt))
        {
            if (!FreeListEmpty(order, FreeListId(order, fallback)))
            {
                return (int)fallback;
            }
        }
        return -1;
    }

    /// <summary>__rmqueue_claim(): the largest fallback block first, so whole pageblocks move.</summary>
    private int RmqueueClaim(int order, MigrateType mt, AllocFlags alloc)
    {
        var minOrder = order < PageblockOrder && (alloc & AllocFlags.NoFragment) != 0 ? PageblockOrder : order;
        for (var current = MaxPageOrder; current >= minOrder; current--)
        {
            var fallback = FindSuitableFallback(current, mt, claimable: true);
            if (fallback == -1)
            {
                continue;
            }
            if (fallback == -2)
            {
                break;
            }
            var head = FreeListFirst(current, FreeListId(current, (MigrateType)fallback));
            var idx = TryToClaimBlock(head, current, order, mt, (MigrateType)fallback, alloc);
            if (idx >= 0)
            {
                _events[(int)VmEvent.FallbackClaim]++;
                TraceExtfrag(idx, order, current, mt, (MigrateType)fallback);
                return idx;
            }
        }
        return IntrusiveLists.Nil;
    }

    /// <summary>__rmqueue_steal(): the smallest fallback block, split on the fallback type's lists.</summary>
    private int RmqueueSteal(int order, MigrateType mt)
    {
        for (var current = order; current <= MaxPageOrder; current++)
        {
            var fallback = FindSuitableFallback(current, mt, claimable: false);
            if (fallback < 0)
            {
                continue;
            }
            var fallbackMt = (MigrateType)fallback;
            var idx = FreeListFirst(current, FreeListId(current, fallbackMt));
            DelFromFreeList(idx, current, fallbackMt);
            Expand(idx, order, current, fallbackMt);
            _events[(int)VmEvent.FallbackSteal]++;
            TraceExtfrag(idx, order, current, mt, fallbackMt);
            return idx;
        }
        return IntrusiveLists.Nil;
    }

    /// <summary>trace_mm_page_alloc_extfrag(): change_ownership when the block's pageblock is now the allocation's type.</summary>
    private void TraceExtfrag(int idx, int order, int fallbackOrder, MigrateType mt, MigrateType fallbackMt)
    {
        if (_trace.Enabled)
        {
            _trace.Emit(TraceEventType.MmPageAllocExtfrag, Index, PfnOf(idx), order, (int)mt,
                flag: PageblockMigrateType(idx) == mt, fallbackOrder: fallbackOrder, fallbackMigrateType: (int)fallbackMt);
        }
    }

    /// <summary>
    /// try_to_claim_block(): a block at or above pageblock_order is retyped whole; a smaller one
    /// claims its pageblock when at least half of it is free or alike. prep_move_freepages_block()
    /// counts the block's LRU pages (the system's page cache and anon) as movable; clients' pinned
    /// allocations never are. Falling back below a whole pageblock boosts the watermarks
    /// (boost_watermark(), whether or not the block is claimed) and, for an allocation that may wake
    /// kswapd, sets ZONE_BOOSTED_WATERMARK.
    /// </summary>
    private int TryToClaimBlock(int idx, int currentOrder, int order, MigrateType startMt, MigrateType blockMt, AllocFlags alloc)
    {
        if (currentOrder >= PageblockOrder)
        {
            DelFromFreeList(idx, currentOrder, blockMt);
            ChangePageblockRange(idx, currentOrder, startMt);
            Expand(idx, order, currentOrder, startMt);
            return idx;
        }
        if (BoostWatermark() && (alloc & AllocFlags.Kswapd) != 0)
        {
            BoostedWatermarkFlag = true;
        }

        var start = PageblockStartInZone(idx);
        if (start < 0)
        {
            return IntrusiveLists.Nil; // the pageblock crosses the zone's ends
        }
        int freePages = 0, movablePages = 0;
        for (var i = start; i < start + PageblockNrPages;)
        {
            if ((Flags[i] & (byte)PageFlags.Buddy) != 0)
            {
                freePages += 1 << Order[i];
                i += 1 << Order[i];
            }
            else
            {
                if ((Flags[i] & (byte)PageFlags.Lru) != 0)
                {
                    movablePages++; // PageLRU(): could be isolated for migration
                }
                i++;
            }
        }
        var alikePages = startMt == MigrateType.Movable ? movablePages
            : blockMt == MigrateType.Movable ? PageblockNrPages - (freePages + movablePages)
            : 0;
        if (freePages + alikePages < PageblockNrPages / 2)
        {
            return IntrusiveLists.Nil;
        }

        MoveFreepagesBlock(start, blockMt, startMt); // __move_freepages_block() + set_pageblock_migratetype()
        return RmqueueSmallest(order, startMt);
    }
}
