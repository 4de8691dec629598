using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// The CONFIG_DEBUG_VM of the simulation: walk every list and every page and report each
// inconsistency. O(pages); for tests and for users who ask, never on the allocation paths.
public sealed partial class Zone
{
    /// <summary>Every inconsistency found, in words; empty when the zone is consistent.</summary>
    public IReadOnlyList<string> CheckInvariants()
    {
        using var _ = LockAll();
        var problems = new List<string>();
        void Report(string what)
        {
            if (problems.Count < 100)
            {
                problems.Add($"{Key}: {what}");
            }
        }

        CheckFreeLists(Report);
        CheckPcpLists(Report);
        CheckEveryPage(Report);
        CheckMemcgData(Report);
        CheckLruLists(Report);
        return problems;
    }

    /// <summary>
    /// 1. The buddy free lists: heads flagged Buddy with the list's order, aligned, inside the zone,
    /// on the list of their pageblock's type, links consistent, counters right.
    /// </summary>
    private void CheckFreeLists(Action<string> report)
    {
        long listFreePages = 0;
        for (var order = 0; order < NrPageOrders; order++)
        {
            long blocksAtOrder = 0;
            for (var mt = 0; mt < MigrateTypes.Count; mt++)
            {
                var list = FreeListId(order, (MigrateType)mt);
                long blocks = 0;
                var prev = IntrusiveLists.Nil;
                for (var idx = FreeListFirst(order, list); idx != IntrusiveLists.Nil; idx = FreeListNext(order, idx))
                {
                    var pfn = PfnOf(idx);
                    if (blocks++ > SpannedPages)
                    {
                        report($"free list order {order} {MigrateTypes.Name((MigrateType)mt)} loops");
                        break;
                    }
                    if (FreeListPrev(order, idx) != prev)
                    {
                        report($"pfn {Hex(pfn)}: prev link broken on free list order {order}");
                    }
                    prev = idx;
                    if (Flags[idx] != (byte)PageFlags.Buddy || Order[idx] != order)
                    {
                        report($"pfn {Hex(pfn)} on the order-{order} free list has flags {(PageFlags)Flags[idx]} order {Order[idx]}");
                    }
                    if ((pfn & ((1L << order) - 1)) != 0 || idx + (1L << order) > SpannedPages)
                    {
                        report($"pfn {Hex(pfn)}: order-{order} free block misaligned or past the zone's end");
                    }
                    if (PageblockMigrateType(idx) != (MigrateType)mt)
                    {
                        report($"pfn {Hex(pfn)} is on the {MigrateTypes.Name((MigrateType)mt)} list but its pageblock is {MigrateTypes.Name(PageblockMigrateType(idx))}");
                    }
                    listFreePages += 1L << order;
                }
                if (blocks != _nrFreeByType[list])
                {
                    report($"order {order} {MigrateTypes.Name((MigrateType)mt)}: {blocks} blocks listed, counter says {_nrFreeByType[list]}");
                }
                blocksAtOrder += blocks;
            }
            if (blocksAtOrder != _nrFree[order])
            {
                report($"order {order}: {blocksAtOrder} blocks listed, nr_free says {_nrFree[order]}");
            }
        }
        if (listFreePages != _freePages)
        {
            report($"free lists hold {listFreePages} pages, NR_FREE_PAGES says {_freePages}");
        }
        long highatomicFree = 0;
        for (var order = 0; order < NrPageOrders; order++)
        {
            highatomicFree += _nrFreeByType[FreeListId(order, MigrateType.HighAtomic)] << order;
        }
        if (highatomicFree != _freeHighatomicPages)
        {
            report($"the HighAtomic lists hold {highatomicFree} pages, nr_free_highatomic says {_freeHighatomicPages}");
        }
        var reservedBlocks = _pageblockMt.AsSpan().Count((byte)MigrateType.HighAtomic);
        if ((long)reservedBlocks * PageblockNrPages != _reservedHighatomic)
        {
            report($"{reservedBlocks} pageblocks are HighAtomic, nr_reserved_highatomic says {_reservedHighatomic} pages");
        }
    }

    /// <summary>2. The pcp lists: heads flagged Pcp with the list's order; pcp->count right.</summary>
    private void CheckPcpLists(Action<string> report)
    {
        foreach (var pcp in _pcp)
        {
            long pages = 0;
            for (var pindex = 0; pindex < PerCpuPages.NrPcpLists; pindex++)
            {
                var order = PerCpuPages.PindexToOrder(pindex);
                var blocks = 0;
                for (var idx = pcp.Lists.First(pindex); idx != IntrusiveLists.Nil; idx = pcp.Lists.Next(idx))
                {
                    if (Flags[idx] != (byte)PageFlags.Pcp || Order[idx] != order)
                    {
                        report($"pfn {Hex(PfnOf(idx))} on cpu {pcp.Cpu}'s pcp list {pindex} has flags {(PageFlags)Flags[idx]} order {Order[idx]}");
                    }
                    pages += 1L << order;
                    blocks++;
                    if (pages > SpannedPages)
                    {
                        report($"cpu {pcp.Cpu}'s pcp list {pindex} loops");
                        break;
                    }
                }
                if (blocks != pcp.ListBlocks[pindex])
                {
                    report($"cpu {pcp.Cpu}: pcp list {pindex} holds {blocks} blocks, its counter says {pcp.ListBlocks[pindex]}");
                }
            }
            if (pages != pcp.Count)
            {
                report($"cpu {pcp.Cpu}: pcp lists hold {pages} pages, pcp->count says {pcp.Count}");
            }
        }

    }

    /// <summary>
    /// 3. Every page belongs to exactly one block, and each block's pages look as they should; the
    /// counters the walk can recount agree.
    /// </summary>
    private void CheckEveryPage(Action<string> report)
    {
        long walkFree = 0, walkPcp = 0, walkLeaked = 0, walkPoisonedInUse = 0;
        for (var idx = 0; idx < SpannedPages;)
        {
            var flags = (PageFlags)Flags[idx];
            var pfn = PfnOf(idx);
            int size;
            if ((flags & (PageFlags.Buddy | PageFlags.Pcp)) != 0)
            {
                size = 1 << Order[idx];
                if ((flags & PageFlags.Buddy) != 0)
                {
                    walkFree += size;
                    CheckMissedMerge(idx, Order[idx], report);
                }
                else
                {
                    walkPcp += size;
                }
                if (RefCount[idx] != 0)
                {
                    report($"free pfn {Hex(pfn)} has refcount {RefCount[idx]}");
                }
                CheckInterior(idx, size, expectedFlags: PageFlags.None, expectedRef: 0, "free block", report);
            }
            else if ((flags & PageFlags.Allocated) != 0)
            {
                size = 1 << Order[idx];
                if (RefCount[idx] < 1)
                {
                    report($"allocated pfn {Hex(pfn)} has refcount {RefCount[idx]}");
                }
                if ((flags & PageFlags.HwPoison) != 0)
                {
                    walkPoisonedInUse++;
                }
                var compound = (flags & PageFlags.Head) != 0;
                CheckInterior(idx, size, compound ? PageFlags.Tail : PageFlags.None, 0, "allocated block", report);
            }
            else if (flags == PageFlags.HwPoison && RefCount[idx] == 0)
            {
                size = 1;
                walkLeaked++;
            }
            else
            {
                report($"pfn {Hex(pfn)} belongs to no block: flags {flags}, refcount {RefCount[idx]}");
                size = 1;
            }
            if (idx + (long)size > SpannedPages)
            {
                report($"block at pfn {Hex(pfn)} runs past the zone's end");
            }
            idx += size;
        }
        if (walkFree != _freePages)
        {
            report($"page walk found {walkFree} free pages, NR_FREE_PAGES says {_freePages}");
        }
        var pcpCount = _pcp.Sum(p => (long)p.Count);
        if (walkPcp != pcpCount)
        {
            report($"page walk found {walkPcp} pcp pages, pcp counts say {pcpCount}");
        }
        if (walkPoisonedInUse != _hwPoisonInUse)
        {
            report($"page walk found {walkPoisonedInUse} HWPoison pages in use, counter says {_hwPoisonInUse}");
        }
        if (walkLeaked != _hwPoisonLeaked)
        {
            report($"page walk found {walkLeaked} leaked HWPoison pages, counter says {_hwPoisonLeaked}");
        }
    }


    private void CheckInterior(int idx, int size, PageFlags expectedFlags, int expectedRef, string what, Action<string> report)
    {
        var end = Math.Min(idx + size, SpannedPages);
        if (end - idx <= 1)
        {
            return;
        }
        var flags = Flags.AsSpan(idx + 1, end - idx - 1);
        var refs = RefCount.AsSpan(idx + 1, end - idx - 1);
        var badFlag = flags.IndexOfAnyExcept((byte)expectedFlags);
        var badRef = refs.IndexOfAnyExcept(expectedRef);
        if (badFlag >= 0 || badRef >= 0)
        {
            var at = idx + 1 + (badFlag >= 0 ? badFlag : badRef);
            report($"pfn {Hex(PfnOf(at))} inside the {what} at {Hex(PfnOf(idx))} has flags {(PageFlags)Flags[at]} refcount {RefCount[at]}");
        }
        // Only block heads carry an order (merges clear the heads they absorb), so the range free
        // can tell an order-0 page from the head of a larger block by reading that page alone.
        var badOrder = Order.AsSpan(idx + 1, end - idx - 1).IndexOfAnyExcept((byte)0);
        if (badOrder >= 0)
        {
            report($"pfn {Hex(PfnOf(idx + 1 + badOrder))} inside the {what} at {Hex(PfnOf(idx))} keeps order {Order[idx + 1 + badOrder]}");
        }
    }

    /// <summary>Two free buddies of the same order that __free_one_page() should have merged.</summary>
    private void CheckMissedMerge(int idx, int order, Action<string> report)
    {
        if (order >= MaxPageOrder)
        {
            return;
        }
        var pfn = PfnOf(idx);
        var buddyIdx = idx + ((pfn ^ (1L << order)) - pfn);
        if (buddyIdx <= idx || !IsBuddyAt(buddyIdx, order))
        {
            return;
        }
        var mt = PageblockMigrateType(idx);
        var buddyMt = PageblockMigrateType((int)buddyIdx);
        var mayMerge = order < PageblockOrder || mt == buddyMt
            || (MigrateTypes.IsMergeable(mt) && MigrateTypes.IsMergeable(buddyMt));
        if (mayMerge)
        {
            report($"order-{order} buddies at {Hex(pfn)} and {Hex(PfnOf((int)buddyIdx))} are both free but not merged");
        }
    }
}
