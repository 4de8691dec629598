using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// alloc_contig_range(): the other half of the seed's range frees (CMA, gigantic pages). The
// pageblocks of the range are isolated (MIGRATE_ISOLATE: their free pages leave the allocatable
// lists, frees into them stay there), every cpu's pcp lists are drained, and when every page of
// the range is then free the pages are taken out of the buddy as order-0 pages with one reference
// each, which free_contig_range() frees again.
//
// The range's LRU pages (the system's page cache) are migrated out of it first, to pages the zone
// gives outside the isolated pageblocks (__alloc_contig_migrate_range()); a pinned page (a client's)
// cannot be, and makes the call fail with -EBUSY at once. The isolation is undone before the call
// returns, as the kernel's is.
public sealed partial class Zone
{
    /// <summary>
    /// alloc_contig_range(start, start + nr_pages, ACR_FLAGS_NONE, gfp): isolate, drain, migrate the
    /// LRU pages out, check, take. Refuses __GFP_COMP (-EINVAL in the kernel), a range whose
    /// pageblocks leave the zone, a range overlapping one already isolated, and a range with a
    /// pinned page (-EBUSY); nothing changes when it is refused. When the zone has no page left to
    /// migrate to (-ENOMEM), the pages already migrated stay where they went.
    /// </summary>
    public PageResult<long> AllocContigRange(long pfn, long nrPages, GfpFlags gfp, int cpu = 0)
    {
        if (CheckRange(pfn, nrPages) is { } error)
        {
            return error;
        }
        if (CheckContigGfp(gfp, "alloc_contig_range") is { } gfpError)
        {
            return gfpError;
        }
        var firstBlockPfn = pfn & ~((long)PageblockNrPages - 1);
        var endBlockPfn = (pfn + nrPages + PageblockNrPages - 1) & ~((long)PageblockNrPages - 1);
        if (firstBlockPfn < StartPfn || endBlockPfn > EndPfn)
        {
            return new PageError(PageErrorKind.OutOfZone,
                $"alloc_contig_range: the pageblocks of {Hex(pfn)}..{Hex(pfn + nrPages - 1)} ({Hex(firstBlockPfn)}..{Hex(endBlockPfn - 1)}) leave zone {Key}.");
        }
        var first = IndexOf(firstBlockPfn);
        var blocks = (int)((endBlockPfn - firstBlockPfn) >> PageblockOrder);
        var idx = IndexOf(pfn);
        var end = idx + (int)nrPages;

        MigrateType[] saved;
        using (ZoneLock.Enter())
        {
            // has_unmovable_pages() in set_migratetype_isolate(): a page of the range in use refuses
            // the isolation before anything changes, the pcp drain included. (Every page in use is
            // unmovable here; the kernel lets the refcount-0 tails of a non-compound block through
            // to fail later, after the drain.)
            if (FirstUnmovablePage(idx, end) is var inUse and >= 0)
            {
                return Ebusy(pfn, nrPages, inUse);
            }
            if (StartIsolatePageRange(first, blocks) is not { } isolated)
            {
                return new PageError(PageErrorKind.Busy,
                    $"alloc_contig_range: a pageblock of {Hex(firstBlockPfn)}..{Hex(endBlockPfn - 1)} is already isolated by another call (-EBUSY).");
            }
            saved = isolated;
        }
        DrainPages(null); // drain_all_pages(zone): pcp pages of the isolated blocks go to their Isolate lists
        if (MigrateLruPagesOut(idx, end, cpu) is { } noMemory)
        {
            using (ZoneLock.Enter())
            {
                UndoIsolatePageRange(first, blocks, saved);
            }
            return noMemory;
        }
        using (ZoneLock.Enter())
        {
            var busy = FirstPageNotFree(idx, end, pcpCountsAsFree: false); // test_pages_isolated()
            if (busy < 0)
            {
                TakeFreeRange(idx, end);
            }
            UndoIsolatePageRange(first, blocks, saved);
            if (busy >= 0)
            {
                return Ebusy(pfn, nrPages, busy); // a racing allocation took a page between the check and the drain
            }
        }
        return pfn;
    }

    /// <summary>alloc_contig_range() and alloc_contig_pages() hand back order-0 pages: __GFP_COMP is -EINVAL.</summary>
    internal static PageError? CheckContigGfp(GfpFlags gfp, string operation) => (gfp & GfpFlags.Comp) == 0 ? null
        : new PageError(PageErrorKind.InvalidGfp, $"{operation}: __GFP_COMP is refused (-EINVAL); the range comes back as order-0 pages.");

    private PageError Ebusy(long pfn, long nrPages, int inUse) => new(PageErrorKind.Busy,
        $"alloc_contig_range: pfn {Hex(PfnOf(inUse))} of {Hex(pfn)}..{Hex(pfn + nrPages - 1)} is in use and cannot be migrated (-EBUSY: a pinned page, not on an LRU list).");

    /// <summary>has_unmovable_pages(): the first page of [idx, end) that is neither free (buddy or pcp) nor on an LRU list, or -1. Caller holds zone->lock.</summary>
    private int FirstUnmovablePage(int idx, int end)
    {
        for (var i = idx; i < end;)
        {
            var (head, order, kind) = LocateBlock(i);
            if (kind is not (PageLocation.Buddy or PageLocation.Pcp) && !IsLru(i))
            {
                return i;
            }
            i = kind == PageLocation.Allocated && IsLru(i) ? i + 1 : head + (1 << order);
        }
        return -1;
    }

    /// <summary>
    /// __alloc_contig_migrate_range(): every LRU page of the isolated range moves to a page the zone
    /// gives outside it (alloc_migration_target(): an order-0 Movable allocation at the min
    /// watermark, from the lists the isolated pageblocks are not on), counting pgmigrate_success.
    /// -ENOMEM (507) when the zone has none left; a page that left the LRU meanwhile is left to
    /// test_pages_isolated().
    /// </summary>
    private PageError? MigrateLruPagesOut(int idx, int end, int cpu)
    {
        long migrated = 0;
        PageError? error = null;
        for (var i = idx; i < end && error is null; i++)
        {
            if (!IsLru(i) || !IsolateLruPage(i, out var lru))
            {
                continue;
            }
            var dst = ZoneWatermarkOk(0, Watermarks.Min, Type, AllocFlags.WmarkMin) ? Rmqueue(0, MigrateType.Movable, AllocFlags.WmarkMin, cpu, out _) : -1;
            if (dst < 0)
            {
                PutbackLruPage(i, lru);
                error = new PageError(PageErrorKind.OutOfMemory,
                    $"alloc_contig_range: no page of zone {Key} is left to migrate pfn {Hex(PfnOf(i))} to (-ENOMEM); {migrated} pages of the range were migrated.");
                break;
            }
            PrepNewPage(dst, 0, compound: false);
            MigrateIsolatedPage(i, dst, lru, cpu);
            migrated++;
        }
        MigrationCounters?.Add(Reclaim.VmscanEvent.PgmigrateSuccess, migrated);
        return error;
    }

    /// <summary>
    /// The first page of [idx, end) that is not in a free block (in the buddy, or with
    /// <paramref name="pcpCountsAsFree"/> on a pcp list too), or -1: has_unmovable_pages() before
    /// the isolation, test_pages_isolated() after the drain. Blocks are found by LocateBlock().
    /// </summary>
    private int FirstPageNotFree(int idx, int end, bool pcpCountsAsFree)
    {
        for (var i = idx; i < end;)
        {
            var (head, order, kind) = LocateBlock(i);
            if (kind != PageLocation.Buddy && !(pcpCountsAsFree && kind == PageLocation.Pcp))
            {
                return i;
            }
            i = head + (1 << order);
        }
        return -1;
    }

    /// <summary>
    /// start_isolate_page_range(): every pageblock of the range becomes MIGRATE_ISOLATE and its free
    /// pages move to the Isolate lists; a free block larger than a pageblock that reaches outside the
    /// range is split first, its outside part freed again on its own type. Returns the pageblocks'
    /// types to restore, or null (nothing changed) when one is already isolated. Caller holds zone->lock.
    /// </summary>
    private MigrateType[]? StartIsolatePageRange(int first, int blocks)
    {
        var saved = new MigrateType[blocks];
        for (var b = 0; b < blocks; b++)
        {
            saved[b] = PageblockMigrateType(first + (b << PageblockOrder));
            if (saved[b] == MigrateType.Isolate)
            {
                return null;
            }
        }
        var end = first + (blocks << PageblockOrder);
        for (var start = first; start < end; start += PageblockNrPages)
        {
            if (PageblockMigrateType(start) == MigrateType.Isolate)
            {
                continue; // isolated with the large block that held it
            }
            if (LocateBlock(start) is (var head, var order, PageLocation.Buddy) && order > PageblockOrder)
            {
                IsolateLargeFreeBlock(head, order, first, end);
            }
            else
            {
                MoveFreepagesBlock(start, PageblockMigrateType(start), MigrateType.Isolate);
            }
        }
        return saved;
    }

    /// <summary>A free block above pageblock_order: its pageblocks inside [first, end) are isolated, the rest freed again.</summary>
    private void IsolateLargeFreeBlock(int head, int order, int first, int end)
    {
        var mt = PageblockMigrateType(head);
        DelFromFreeList(head, order, mt);
        Order[head] = 0;
        var blockEnd = head + (1 << order);
        for (var p = head; p < blockEnd; p += PageblockNrPages)
        {
            if (p >= first && p < end)
            {
                ChangePageblockRange(p, 0, MigrateType.Isolate);
                AddToFreeList(p, PageblockOrder, MigrateType.Isolate, toTail: false);
            }
        }
        for (var p = head; p < blockEnd; p += PageblockNrPages)
        {
            if (p < first || p >= end)
            {
                FreeOnePageCore(p, PageblockOrder, mt, toTail: false); // merges with its outside neighbours again
            }
        }
    }

    /// <summary>
    /// isolate_freepages_range() from find_large_buddy(start): the free blocks covering [idx, end)
    /// leave the free lists; the parts of the first and last blocks outside the range are freed back
    /// as aligned chunks (on the Isolate lists, as their pageblocks still are); the pages of the
    /// range become order-0 pages with one reference. Caller holds zone->lock and has checked.
    /// </summary>
    private void TakeFreeRange(int idx, int end)
    {
        for (var i = idx; i < end;)
        {
            var (head, order, _) = LocateBlock(i); // find_large_buddy(): a free block, as checked
            var blockEnd = head + (1 << order);
            DelFromFreeList(head, order, PageblockMigrateType(head));
            Order[head] = 0;
            FreeBackToBuddy(head, Math.Max(idx, head) - head);
            FreeBackToBuddy(Math.Min(end, blockEnd), blockEnd - Math.Min(end, blockEnd));
            for (var p = Math.Max(idx, head); p < Math.Min(end, blockEnd); p++)
            {
                Flags[p] = (byte)PageFlags.Allocated;
                Order[p] = 0;
                Volatile.Write(ref RefCount[p], 1);
            }
            i = blockEnd;
        }
    }

    /// <summary>Frees [idx, idx + n) to the buddy as the largest aligned chunks (__free_contig_frozen_range() of the leftovers).</summary>
    private void FreeBackToBuddy(int idx, int n)
    {
        while (n > 0)
        {
            var order = Math.Min(AlignmentOrder(PfnOf(idx)), ILog2(n));
            FreeOnePageCore(idx, order, PageblockMigrateType(idx), toTail: false);
            idx += 1 << order;
            n -= 1 << order;
        }
    }

    /// <summary>
    /// undo_isolate_page_range(): each pageblock gets its type back, and its free blocks are freed
    /// again on that type, so they merge with their neighbours as __putback_isolated_page() lets
    /// them. Caller holds zone->lock.
    /// </summary>
    private void UndoIsolatePageRange(int first, int blocks, MigrateType[] saved)
    {
        var end = first + (blocks << PageblockOrder);
        var free = new List<(int Head, int Order)>();
        for (var i = first; i < end;)
        {
            if ((Flags[i] & (byte)PageFlags.Buddy) != 0)
            {
                int order = Order[i];
                DelFromFreeList(i, order, MigrateType.Isolate);
                Order[i] = 0;
                free.Add((i, order));
                i += 1 << order;
            }
            else
            {
                i++;
            }
        }
        for (var b = 0; b < blocks; b++)
        {
            ChangePageblockRange(first + (b << PageblockOrder), 0, saved[b]);
        }
        foreach (var (head, order) in free)
        {
            var chunk = Math.Min(order, PageblockOrder);
            for (var p = head; p < head + (1 << order); p += 1 << chunk)
            {
                FreeOnePageCore(p, chunk, PageblockMigrateType(p), toTail: false);
            }
        }
    }
}
