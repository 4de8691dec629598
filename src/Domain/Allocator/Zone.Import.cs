using PageAlloc.Domain.Import;
using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// Starting from a real machine's state: a freshly booted zone is given the free lists a real
// machine's /proc/pagetypeinfo shows, the rest of its pages in use by the simulated system.
public sealed partial class Zone
{
    private const byte Unused = 0, FreeBlock = 1, Guard = 2;

    /// <summary>
    /// Gives a freshly booted zone exactly <paramref name="counts"/>' free blocks per migratetype and
    /// order, and its pageblocks per migratetype (the rest Movable); every other page is in use by the
    /// system: an order-0 page with one reference, owned by no client. The layout is deterministic
    /// for a seed: pageblock types are laid out in runs shuffled two pageblocks at a time (so order-10
    /// blocks find pairs), and each free block is placed at the first free aligned slot of its type
    /// whose buddy holds an in-use page, so that nothing could merge and buddyinfo reads back what was
    /// imported. Refused, changing nothing, when the counts do not fit the zone.
    /// </summary>
    /// <param name="pageCache">The used pages of Movable pageblocks become page cache on the inactive file list (a
    /// machine's movable memory is mostly that), those of other pageblocks stay pinned (kernel memory).</param>
    public PageError? ImportFreeLists(FreeListCounts counts, int seed, bool pageCache = false)
    {
        var types = PageblockTypes(counts.Pageblocks, seed, out var error);
        if (error is not null)
        {
            return error;
        }
        var state = new byte[SpannedPages];
        var placed = new List<(int Idx, int Order, MigrateType Mt)>();
        for (var order = MaxPageOrder; order >= 0; order--)
        {
            for (var mt = 0; mt < MigrateTypes.Count; mt++)
            {
                var need = counts.FreeBlocks[mt][order];
                if (need > 0 && Place(state, types, order, (MigrateType)mt, need, placed) is { } missing)
                {
                    return new PageError(PageErrorKind.ImportDoesNotFit,
                        $"import: {missing} of {need} free order-{order} {MigrateTypes.Name((MigrateType)mt)} blocks do not fit zone {Key} "
                        + $"({SpannedPages} pages, {types.Count(t => t == mt)} {MigrateTypes.Name((MigrateType)mt)} pageblocks) without merging.");
                }
            }
        }
        using var _ = ZoneLock.Enter();
        Apply(types, placed);
        if (pageCache)
        {
            UsedMovablePagesToLru();
        }
        return null;
    }

    /// <summary>The type of each pageblock: the counts in runs, shuffled a pair at a time; the rest Movable.</summary>
    private byte[] PageblockTypes(long[]? pageblocks, int seed, out PageError? error)
    {
        error = null;
        var count = _pageblockMt.Length;
        var wanted = pageblocks ?? new long[MigrateTypes.Count];
        if (wanted.Sum() > count)
        {
            error = new PageError(PageErrorKind.ImportDoesNotFit, $"import: {wanted.Sum()} pageblocks do not fit zone {Key}, which has {count}.");
            return [];
        }
        var runs = new byte[count];
        var at = 0;
        for (var mt = 0; mt < MigrateTypes.Count; mt++)
        {
            if (mt == (int)MigrateType.Movable)
            {
                continue;
            }
            for (var i = 0; i < wanted[mt]; i++)
            {
                runs[at++] = (byte)mt;
            }
        }
        for (; at < count; at++)
        {
            runs[at] = (byte)MigrateType.Movable;
        }
        // Shuffle pairs of pageblocks (an order-10 block spans two) with the seed, Fisher-Yates.
        var pairs = (count + 1) / 2;
        var order = Enumerable.Range(0, pairs).ToArray();
        new Random(seed).Shuffle(order);
        var types = new byte[count];
        for (var p = 0; p < pairs; p++)
        {
            for (var half = 0; half < 2 && (2 * p) + half < count && (2 * order[p]) + half < count; half++)
            {
                types[(2 * p) + half] = runs[(2 * order[p]) + half];
            }
        }
        return types;
    }

    /// <summary>Places up to <paramref name="need"/> blocks; returns how many could not be placed, or null when all were.</summary>
    private long? Place(byte[] state, byte[] types, int order, MigrateType mt, long need, List<(int, int, MigrateType)> placed)
    {
        var size = 1 << order;
        // Slots are aligned in pfns, not in the zone's indices (a zone may start unaligned, as DMA does at pfn 1).
        var first = (StartPfn + size - 1) & ~((long)size - 1);
        for (var pfn = first; pfn + size <= EndPfn && need > 0; pfn += size)
        {
            var idx = IndexOf(pfn);
            if (!SlotOfType(types, pfn, size, mt) || !AllUnused(state, idx, size))
            {
                continue;
            }
            if (order < MaxPageOrder)
            {
                // The buddy must hold a page in use, or the two would merge: make its first page one.
                var buddy = IndexOf(pfn ^ size);
                if (buddy < 0 || buddy >= SpannedPages)
                {
                    // the buddy lies outside the zone: page_is_buddy() never sees it, nothing merges
                }
                else if (state[buddy] == FreeBlock)
                {
                    continue;
                }
                else
                {
                    state[buddy] = Guard;
                }
            }
            state.AsSpan(idx, size).Fill(FreeBlock);
            placed.Add((idx, order, mt));
            need--;
        }
        return need == 0 ? null : need;
    }

    private bool SlotOfType(byte[] types, long pfn, int size, MigrateType mt)
    {
        for (var block = (pfn >> PageblockOrder) - _firstPageblock; block <= ((pfn + size - 1) >> PageblockOrder) - _firstPageblock; block++)
        {
            if (types[block] != (byte)mt)
            {
                return false;
            }
        }
        return true;
    }

    private static bool AllUnused(byte[] state, int idx, int size) => !state.AsSpan(idx, size).ContainsAnyExcept(Unused);

    /// <summary>Empties the buddy (a booted zone has no pcp pages and no allocations), marks every page in use, then frees the placed blocks.</summary>
    private void Apply(byte[] types, List<(int Idx, int Order, MigrateType Mt)> placed)
    {
        for (var idx = 0; idx < SpannedPages;)
        {
            var order = Order[idx];
            if ((Flags[idx] & (byte)PageFlags.Buddy) != 0)
            {
                DelFromFreeList(idx, order, PageblockMigrateType(idx));
                idx += 1 << order;
            }
            else
            {
                idx++;
            }
        }
        types.CopyTo(_pageblockMt, 0);
        // A real machine's HighAtomic pageblocks are its highatomic reserve.
        _reservedHighatomic = (long)_pageblockMt.AsSpan().Count((byte)MigrateType.HighAtomic) * PageblockNrPages;
        RefCount.AsSpan().Fill(1);
        Flags.AsSpan().Fill((byte)PageFlags.Allocated);
        Order.AsSpan().Clear();
        foreach (var (idx, order, mt) in placed)
        {
            var pages = 1 << order;
            RefCount.AsSpan(idx, pages).Clear();
            Flags.AsSpan(idx, pages).Clear();
            AddToFreeList(idx, order, mt, toTail: true);
        }
    }
}
