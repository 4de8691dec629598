using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// The allocation side of one zone: watermark checks, rmqueue() through the pcp (Zone.Pcp.cs) or the
// buddy, and prep_new_page(). The walk over zones lives in Machine.AllocPages (get_page_from_freelist()).
public sealed partial class Zone
{
    /// <summary>
    /// __zone_watermark_ok(): free pages above the mark (less the allowances for __GFP_HIGH and
    /// atomic requests) plus the lowmem reserve, and for order &gt; 0 a free block that is big enough.
    /// Reads the counters without zone->lock, as the kernel does.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal bool ZoneWatermarkOk(int order, long mark, ZoneType highestZone, AllocFlags alloc) =>
        ZoneWatermarkOk(order, mark, highestZone, alloc, NrFreePages);

    /// <summary>__zone_watermark_ok() with the free pages given: should_reclaim_retry() counts the reclaimable ones as free.</summary>
    internal bool ZoneWatermarkOk(int order, long mark, ZoneType highestZone, AllocFlags alloc, long free)
    {
        var freePages = free - ((1L << order) - 1);
        var min = mark;
        if ((alloc & AllocFlags.Reserves) == 0)
        {
            // __zone_watermark_unusable_free(): without rights to the reserves, the free pages of
            // the highatomic reserve do not count.
            freePages -= Volatile.Read(ref _freeHighatomicPages);
        }
        else if ((alloc & AllocFlags.MinReserve) != 0)
        {
            min -= min / 2;
            if ((alloc & AllocFlags.NonBlock) != 0)
            {
                min -= min / 4;
            }
        }
        if (freePages <= min + _lowmemReserve[(int)highestZone])
        {
            return false;
        }
        if (order == 0)
        {
            return true;
        }
        for (var o = order; o <= MaxPageOrder; o++)
        {
            if (Volatile.Read(ref _nrFree[o]) == 0)
            {
                continue;
            }
            for (var mt = 0; mt < MigrateTypes.PcpTypes; mt++)
            {
                if (!FreeListEmpty(o, FreeListId(o, (MigrateType)mt)))
                {
                    return true;
                }
            }
            if ((alloc & AllocFlags.HighAtomic) != 0 && !FreeListEmpty(o, FreeListId(o, MigrateType.HighAtomic)))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// rmqueue(): the pcp path for pcp orders (falling through to the buddy when the pcp lock is
    /// contended or the refill found nothing), the buddy path otherwise. Returns the page index or
    /// -1; does not set up the page (see <see cref="PrepNewPage"/>).
    /// </summary>
    internal int Rmqueue(int order, MigrateType mt, AllocFlags alloc, int cpu, out bool fromPcp)
    {
        if (PcpAllowedOrder(order))
        {
            var idx = RmqueuePcplist(order, mt, alloc, _pcp[cpu]);
            if (idx >= 0)
            {
                fromPcp = true;
                return idx;
            }
        }
        fromPcp = false;
        return RmqueueBuddy(order, mt, alloc);
    }

    /// <summary>
    /// rmqueue_buddy(): under zone->lock, the highatomic reserve first for an ALLOC_HIGHATOMIC
    /// request, then __rmqueue(); when that fails, a non-blocking request may still take from the
    /// reserve ("failing now is worse than failing a high-order atomic allocation in the future").
    /// After the lock is dropped, an ALLOC_HIGHATOMIC success reserves its pageblock
    /// (reserve_highatomic_pageblock(), which takes zone->lock itself). Since v7.1 (b480cbb07102)
    /// this is the only place that grows the reserve: get_page_from_freelist() no longer does it
    /// after every highatomic success, so a block taken from a pcp list grows nothing. v7.2 tests
    /// ALLOC_HIGHATOMIC alone; the later "use existing highatomic reserves on the buddy fastpath"
    /// adds ALLOC_WMARK_MIN to the test when it lets the fast path set ALLOC_HIGHATOMIC, and is
    /// not modelled (in v7.2 only gfp_to_alloc_flags() sets the flag, always with ALLOC_WMARK_MIN).
    /// </summary>
    private int RmqueueBuddy(int order, MigrateType mt, AllocFlags alloc)
    {
        int idx;
        using (ZoneLock.Enter())
        {
            idx = (alloc & AllocFlags.HighAtomic) != 0 ? RmqueueSmallest(order, MigrateType.HighAtomic) : IntrusiveLists.Nil;
            if (idx < 0)
            {
                idx = RmqueueCore(order, mt, alloc);
            }
            if (idx < 0 && (alloc & AllocFlags.NonBlock) != 0)
            {
                idx = RmqueueSmallest(order, MigrateType.HighAtomic);
            }
            if (idx < 0)
            {
                return idx;
            }
            _allocsByOrder[order]++; // pgalloc and alloc_from_buddy are derived from it
        }
        if ((alloc & AllocFlags.HighAtomic) != 0)
        {
            ReserveHighatomicPageblock(idx, order); // keep the pageblock for the next high-order atomic request
        }
        return idx;
    }

    /// <summary>
    /// prep_new_page(): refcount 1 on the head (set_page_refcounted()), and with __GFP_COMP and
    /// order &gt; 0 a compound page (prep_compound_page(): PG_head, and PageTail on every tail).
    /// The order is recorded on the head, as page_owner records it. The refcount is written last,
    /// so a racing (buggy) free sees either a free page or a fully set up one.
    /// </summary>
    internal void PrepNewPage(int idx, int order, bool compound)
    {
        var isCompound = compound && order > 0;
        if (isCompound)
        {
            Flags.AsSpan(idx + 1, (1 << order) - 1).Fill((byte)PageFlags.Tail);
        }
        Flags[idx] = (byte)(PageFlags.Allocated | (isCompound ? PageFlags.Head : PageFlags.None));
        Order[idx] = (byte)order;
        Volatile.Write(ref RefCount[idx], 1);
    }

    /// <summary>
    /// Counts an allocation that failed on this zone (it was the preferred zone). Atomic rather than
    /// under zone->lock: the failure path holds no lock, and taking one just to count would show up
    /// in the lock's statistics.
    /// </summary>
    internal void CountAllocFailure() => Interlocked.Increment(ref _events[(int)VmEvent.AllocFail]);
}
