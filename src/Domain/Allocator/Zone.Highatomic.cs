using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// The highatomic reserve: pageblocks set aside for high-order atomic allocations once one has had
// to dip into the reserves (reserve_highatomic_pageblock()), handed back to everyone when an
// allocation is about to fail (unreserve_highatomic_pageblock()).
public sealed partial class Zone
{
    /// <summary>zone->nr_reserved_highatomic: pages in pageblocks reserved for high-order atomic allocations.</summary>
    public long ReservedHighatomicPages => Volatile.Read(ref _reservedHighatomic);

    /// <summary>zone->nr_free_highatomic: free pages on the MIGRATE_HIGHATOMIC lists.</summary>
    public long FreeHighatomicPages => Volatile.Read(ref _freeHighatomicPages);

    /// <summary>
    /// reserve_highatomic_pageblock(): after an ALLOC_HIGHATOMIC allocation from the buddy
    /// (rmqueue_buddy()), retype the pageblock(s) holding it MIGRATE_HIGHATOMIC, up to about 1% of the zone (none when 1% is below a
    /// pageblock). Only blocks of a mergeable type are taken.
    /// </summary>
    internal void ReserveHighatomicPageblock(int idx, int order)
    {
        if (ManagedPages / 100 < PageblockNrPages)
        {
            return;
        }
        var maxManaged = AlignUp(ManagedPages / 100, PageblockNrPages);
        if (Volatile.Read(ref _reservedHighatomic) >= maxManaged)
        {
            return;
        }
        using var _ = ZoneLock.Enter();
        if (_reservedHighatomic >= maxManaged)
        {
            return; // recheck under the lock
        }
        var mt = PageblockMigrateType(idx);
        if (!MigrateTypes.IsMergeable(mt))
        {
            return;
        }
        if (order < PageblockOrder)
        {
            if (MoveFreepagesBlock(idx, mt, MigrateType.HighAtomic) < 0)
            {
                return;
            }
            _reservedHighatomic += PageblockNrPages;
        }
        else
        {
            ChangePageblockRange(idx, order, MigrateType.HighAtomic);
            _reservedHighatomic += 1L << order;
        }
    }

    /// <summary>
    /// unreserve_highatomic_pageblock(ac, force) for this zone: give the first reserved pageblock
    /// that has a free page back to <paramref name="mt"/>, moving its free pages with it. Unforced
    /// (after a direct reclaim that made progress), a zone keeps its last reserved pageblock; forced
    /// (before the allocation fails), it gives that one too. Returns whether a block was given back.
    /// </summary>
    internal bool UnreserveHighatomicPageblock(MigrateType mt, bool force = true)
    {
        using var _ = ZoneLock.Enter();
        if (!force && _reservedHighatomic <= PageblockNrPages)
        {
            return false;
        }
        for (var order = 0; order <= MaxPageOrder; order++)
        {
            var list = FreeListId(order, MigrateType.HighAtomic);
            if (FreeListEmpty(order, list))
            {
                continue;
            }
            var idx = FreeListFirst(order, list);
            _reservedHighatomic -= Math.Min(Math.Max(PageblockNrPages, 1L << order), _reservedHighatomic);
            if (order < PageblockOrder)
            {
                return MoveFreepagesBlock(idx, MigrateType.HighAtomic, mt) > 0;
            }
            MoveToFreeList(idx, order, MigrateType.HighAtomic, mt);
            ChangePageblockRange(idx, order, mt);
            return true;
        }
        return false;
    }

    /// <summary>
    /// move_freepages_block(): every free block of the pageblock holding idx moves from the
    /// <paramref name="from"/> lists to the <paramref name="to"/> lists, and the pageblock takes
    /// <paramref name="to"/>. Returns the pages moved, or -1 when the pageblock crosses the zone's
    /// ends (nothing changes). Caller holds zone->lock.
    /// </summary>
    private int MoveFreepagesBlock(int idx, MigrateType from, MigrateType to)
    {
        var start = PageblockStartInZone(idx);
        if (start < 0)
        {
            return -1;
        }
        var moved = 0;
        for (var i = start; i < start + PageblockNrPages;)
        {
            if ((Flags[i] & (byte)PageFlags.Buddy) != 0)
            {
                var order = Order[i];
                MoveToFreeList(i, order, from, to);
                moved += 1 << order;
                i += 1 << order;
            }
            else
            {
                i++;
            }
        }
        ChangePageblockRange(start, 0, to);
        return moved;
    }

    /// <summary>prep_move_freepages_block()'s bounds: the index where the pageblock holding idx starts, or -1 when it crosses the zone's ends.</summary>
    private int PageblockStartInZone(int idx)
    {
        var blockStartPfn = (StartPfn + idx) & ~((long)PageblockNrPages - 1);
        return blockStartPfn < StartPfn || blockStartPfn + PageblockNrPages > EndPfn ? -1 : IndexOf(blockStartPfn);
    }

    private static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;
}
