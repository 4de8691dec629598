using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// alloc_contig_range(): the other half of the seed's range frees (CMA, gigantic pages). The
// pageblocks of the range are isolated (MIGRATE_ISOLATE: their free pages leave the allocatable
// lists, frees into them stay there), every cpu's pcp lists are drained, and when every page of
// the range is then free the pages are taken out of the buddy as order-0 pages with one reference
// each, which free_contig_range() frees again.
//
// Departure: the kernel migrates the pages in use out of the range (and retries, up to -EBUSY);
// PageAlloc has no page contents or mappings to migrate, so a page in use makes the call fail
// with -EBUSY at once. The isolation is undone before the call returns, as the kernel's is.
public sealed partial class Zone
{
    /// <summary>
    /// alloc_contig_range(start, start + nr_pages, ACR_FLAGS_NONE, gfp): isolate, drain, check, take.
    /// Refuses __GFP_COMP (-EINVAL in the kernel), a range whose pageblocks leave the zone, a range
    /// overlapping one already isolated, and a range with a page in use (-EBUSY). Nothing changes
    /// when it is refused.
    /// </summary>
    public PageResult<long> AllocContigRange(long pfn, long nrPages, GfpFlags gfp)
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
            if (FirstPageNotFree(idx, end, pcpCountsAsFree: true) is var inUse and >= 0)
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
        $"alloc_contig_range: pfn {Hex(PfnOf(inUse))} of {Hex(pfn)}..{Hex(pfn + nrPages - 1)} is in use (-EBUSY; PageAlloc does not migrate pages).");

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
