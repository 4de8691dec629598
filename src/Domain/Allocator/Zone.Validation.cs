using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// Checks that run before anything changes, and the words that explain a refusal. A refused
// operation leaves the zone exactly as it was.
public sealed partial class Zone
{
    internal PageError? CheckCpu(int cpu) =>
        cpu >= 0 && cpu < _pcp.Length ? null
        : new PageError(PageErrorKind.InvalidCpu, $"cpu {cpu} does not exist: the machine has cpus 0..{_pcp.Length - 1}.");

    internal static PageError? CheckOrder(int order) =>
        order is >= 0 and <= MaxPageOrder ? null
        : new PageError(PageErrorKind.InvalidOrder, $"order {order} is outside 0..{MaxPageOrder} (MAX_PAGE_ORDER).");

    internal PageError? CheckRange(long pfn, long nrPages)
    {
        if (nrPages < 1)
        {
            return new PageError(PageErrorKind.InvalidLength, $"nr_pages must be at least 1, not {nrPages}.");
        }
        if (!Contains(pfn) || nrPages > EndPfn - pfn)
        {
            var what = nrPages == 1 ? $"pfn {Hex(pfn)}" : $"range {Hex(pfn)}..{Hex(pfn + nrPages - 1)}";
            return new PageError(PageErrorKind.OutOfZone,
                $"{what} is not inside zone {Key} ({Hex(StartPfn)}..{Hex(EndPfn - 1)}).");
        }
        return null;
    }

    /// <summary>Checks pfn, order and alignment for an operation on a block of 1 &lt;&lt; order pages.</summary>
    internal PageError? CheckBlock(long pfn, int order)
    {
        if (CheckOrder(order) is { } orderError)
        {
            return orderError;
        }
        if ((pfn & ((1L << order) - 1)) != 0)
        {
            return new PageError(PageErrorKind.Misaligned,
                $"pfn {Hex(pfn)} is not aligned to an order-{order} block ({1L << order} pages).");
        }
        return CheckRange(pfn, 1L << order);
    }

    internal static string Hex(long pfn) => $"0x{pfn:x}";

    /// <summary>
    /// Finds the block that holds a page: the head is the pfn aligned down to some order k whose
    /// flags mark a block of exactly order k (blocks are naturally aligned and never overlap).
    /// </summary>
    internal (int Head, int Order, PageLocation Kind) LocateBlock(int idx)
    {
        var pfn = StartPfn + idx;
        if (Flags[idx] == (byte)PageFlags.HwPoison)
        {
            return (idx, 0, PageLocation.HwPoisonLeaked);
        }
        for (var k = 0; k <= MaxPageOrder; k++)
        {
            var head = (pfn & ~((1L << k) - 1)) - StartPfn;
            if (head < 0)
            {
                break;
            }
            var flags = (PageFlags)Flags[head];
            if ((flags & (PageFlags.Buddy | PageFlags.Pcp | PageFlags.Allocated)) != 0 && Order[head] == k)
            {
                var kind = (flags & PageFlags.Buddy) != 0 ? PageLocation.Buddy
                    : (flags & PageFlags.Pcp) != 0 ? PageLocation.Pcp
                    : PageLocation.Allocated;
                return ((int)head, k, kind);
            }
        }
        return (idx, 0, PageLocation.Frozen);
    }

    /// <summary>The refusal for a page that is not the head of a live allocation.</summary>
    internal PageError NotAllocatedHead(int idx, string operation)
    {
        var pfn = PfnOf(idx);
        var (head, order, kind) = LocateBlock(idx);
        var at = head == idx ? "head of" : $"inside";
        var block = head == idx ? "" : $" at {Hex(PfnOf(head))}";
        return kind switch
        {
            PageLocation.Buddy => new PageError(PageErrorKind.PageFree,
                $"{operation}: pfn {Hex(pfn)} is free: {at} an order-{order} buddy block{block}."),
            PageLocation.Pcp => new PageError(PageErrorKind.PageFree,
                $"{operation}: pfn {Hex(pfn)} is free: {at} an order-{order} block{block} on a per-CPU page list."),
            PageLocation.HwPoisonLeaked => new PageError(PageErrorKind.HwPoisoned,
                $"{operation}: pfn {Hex(pfn)} is HWPoison and was taken out of use when it was freed."),
            PageLocation.Allocated when (Flags[idx] & (byte)PageFlags.Tail) != 0 => new PageError(PageErrorKind.NotHead,
                $"{operation}: pfn {Hex(pfn)} is a tail page of the order-{order} compound page at {Hex(PfnOf(head))}."),
            PageLocation.Allocated => new PageError(PageErrorKind.NotHead,
                $"{operation}: pfn {Hex(pfn)} is a tail page (refcount 0) of the non-split order-{order} allocation at {Hex(PfnOf(head))}."),
            _ => new PageError(PageErrorKind.PageFree, $"{operation}: pfn {Hex(pfn)} is being freed: its refcount reached zero and it is on its way back to the allocator."),
        };
    }

    /// <summary>
    /// Checks that every page of a range is a separately referenced order-0 page, as
    /// free_contig_range() requires: no compound pages (it WARNs and frees nothing), no free pages,
    /// no tails or heads of a non-split block. Caller holds <see cref="RefLock"/>.
    /// </summary>
    private PageError? CheckOrder0Range(int idx, int n, string operation)
    {
        if (IsReferencedOrder0Range(idx, n))
        {
            return null;
        }
        for (var i = idx; i < idx + n; i++)
        {
            var flags = (PageFlags)Flags[i];
            if ((flags & (PageFlags.Head | PageFlags.Tail)) != 0)
            {
                var (head, order, _) = LocateBlock(i);
                return new PageError(PageErrorKind.CompoundPage,
                    $"{operation}: pfn {Hex(PfnOf(i))} belongs to the order-{order} compound page at {Hex(PfnOf(head))}; "
                    + "free_contig_range() takes order-0 pages only.");
            }
            if ((flags & (PageFlags.Lru | PageFlags.Isolated)) != 0)
            {
                return LruPageRefused(i, operation);
            }
            if (RefCount[i] <= 0 || (flags & PageFlags.Allocated) == 0)
            {
                return NotAllocatedHead(i, operation);
            }
            if (Order[i] != 0)
            {
                return new PageError(PageErrorKind.NotSplit,
                    $"{operation}: pfn {Hex(PfnOf(i))} is the head of a non-split order-{Order[i]} allocation; split_page() it first.");
            }
        }
        return null;
    }

    /// <summary>Every page referenced, order 0, and flagged Allocated (optionally HWPoison).</summary>
    private bool IsReferencedOrder0Range(int idx, int n) =>
        RefCount.AsSpan(idx, n).IndexOfAnyInRange(int.MinValue, 0) < 0
        && Flags.AsSpan(idx, n).IndexOfAnyExcept((byte)PageFlags.Allocated, (byte)(PageFlags.Allocated | PageFlags.HwPoison)) < 0
        && Order.AsSpan(idx, n).IndexOfAnyExcept((byte)0) < 0;
}
