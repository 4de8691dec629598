using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Domain.Allocator;

// Operations on allocated pages: __free_pages(), get_page(), put_page(), split_page() and
// HWPoison injection. Refcount transitions happen under RefLock; the freeing that follows a drop
// to zero happens after it is released, since by then the caller owns the pages alone.
public sealed partial class Zone
{
    /// <summary>
    /// __free_pages() / ___free_pages(): drop the head's reference; at zero free the whole block.
    /// A still-referenced non-compound block has its tail halves freed (orders n-1 .. 0) and keeps
    /// only its head page. The order must be the one the block was allocated with.
    /// </summary>
    public PageResult<RefcountResult> FreePages(long pfn, int order, int cpu, Memcg? owner = null)
    {
        if ((CheckBlock(pfn, order) ?? CheckCpu(cpu)) is { } error)
        {
            return error;
        }
        if (_trace.Enabled)
        {
            Tracepoints.OnCpu(cpu);
        }
        var idx = IndexOf(pfn);
        int remaining;
        bool compound, leaked = false;
        using (RefLock.Enter())
        {
            if (RefCount[idx] <= 0 || (Flags[idx] & (byte)(PageFlags.Allocated | PageFlags.Lru | PageFlags.Isolated)) != (byte)PageFlags.Allocated)
            {
                return IsLru(idx) ? LruPageRefused(idx, "free_pages") : NotAllocatedHead(idx, "free_pages");
            }
            compound = (Flags[idx] & (byte)PageFlags.Head) != 0;
            if (Order[idx] != order)
            {
                return new PageError(PageErrorKind.WrongOrder,
                    $"free_pages: pfn {Hex(pfn)} heads an order-{Order[idx]} {(compound ? "compound page" : "allocation")}, not order {order}.");
            }
            if (CheckOwner(idx, 1, owner, "free_pages") is { } notOwner)
            {
                return notOwner;
            }
            remaining = --RefCount[idx];
            if (remaining == 0)
            {
                leaked = PrepareFree(idx, order, compound, _trace.Enabled);
            }
            else if (!compound && order > 0)
            {
                Order[idx] = 0; // the holder keeps only the head page
                Uncharge(idx, (1L << order) - 1, keepHead: true);
            }
        }
        if (remaining == 0)
        {
            if (!leaked)
            {
                FreeFrozenPages(idx, order, cpu);
            }
        }
        else if (!compound && order > 0)
        {
            for (var o = order - 1; o >= 0; o--)
            {
                // free_frozen_pages() of each half: free_pages_prepare() traces it
                if (_trace.Enabled)
                {
                    _trace.Emit(TraceEventType.MmPageFree, Index, PfnOf(idx + (1 << o)), o, 0);
                }
                FreeFrozenPages(idx + (1 << o), o, cpu);
            }
        }
        return new RefcountResult(pfn, remaining, remaining == 0 && !leaked);
    }

    /// <summary>
    /// free_pages_prepare(), the part PageAlloc models: clear the allocation and compound flags.
    /// The memcg charge is dropped first (__memcg_kmem_uncharge_page() comes before the HWPoison
    /// check in free_pages_prepare(), mm tree 2026): an order-0 HWPoison page then fails the check
    /// and is deliberately leaked, out of every list, flagged HWPoison, charged to nobody.
    /// Returns true when the page was leaked. Caller holds RefLock.
    /// </summary>
    private bool PrepareFree(int idx, int order, bool compound, bool tracing)
    {
        if (tracing)
        {
            _trace.Emit(TraceEventType.MmPageFree, Index, PfnOf(idx), order, 0);
        }
        if (compound)
        {
            Flags.AsSpan(idx + 1, (1 << order) - 1).Clear();
        }
        Uncharge(idx, 1L << order);
        if ((Flags[idx] & (byte)PageFlags.HwPoison) != 0 && order == 0)
        {
            Flags[idx] = (byte)PageFlags.HwPoison;
            _hwPoisonLeaked++;
            _hwPoisonInUse--;
            return true;
        }
        Flags[idx] = (byte)PageFlags.None;
        Order[idx] = 0;
        return false;
    }

    /// <summary>The page whose refcount get_page/put_page act on: a compound tail's head (the folio).</summary>
    private int RefcountTarget(int idx)
    {
        if ((Flags[idx] & (byte)PageFlags.Tail) != 0)
        {
            return LocateBlock(idx).Head;
        }
        return idx;
    }

    /// <summary>get_page(): take a reference. The page must be in use (refcount &gt; 0).</summary>
    public PageResult<RefcountResult> GetPage(long pfn, Memcg? owner = null)
    {
        if (CheckRange(pfn, 1) is { } error)
        {
            return error;
        }
        using var _ = RefLock.Enter();
        var head = RefcountTarget(IndexOf(pfn));
        if (RefCount[head] <= 0 || (Flags[head] & (byte)(PageFlags.Allocated | PageFlags.Lru | PageFlags.Isolated)) != (byte)PageFlags.Allocated)
        {
            return IsLru(head) ? LruPageRefused(head, "get_page") : NotAllocatedHead(IndexOf(pfn), "get_page");
        }
        if (CheckOwner(head, 1, owner, "get_page") is { } notOwner)
        {
            return notOwner;
        }
        if (RefCount[head] == int.MaxValue)
        {
            return new PageError(PageErrorKind.InvalidLength, $"get_page: the refcount of pfn {Hex(pfn)} would overflow.");
        }
        return new RefcountResult(pfn, ++RefCount[head], false);
    }

    /// <summary>
    /// put_page(): drop a reference; at zero the folio is freed (a compound page at its order, an
    /// order-0 page at order 0). A non-compound order &gt; 0 head is refused when this would free it:
    /// the kernel would free it as order 0 and leak its tails; free_pages() is the call to use.
    /// </summary>
    public PageResult<RefcountResult> PutPage(long pfn, int cpu, Memcg? owner = null)
    {
        if ((CheckRange(pfn, 1) ?? CheckCpu(cpu)) is { } error)
        {
            return error;
        }
        if (_trace.Enabled)
        {
            Tracepoints.OnCpu(cpu);
        }
        int head, remaining, order;
        bool leaked = false;
        using (RefLock.Enter())
        {
            head = RefcountTarget(IndexOf(pfn));
            if (RefCount[head] <= 0 || (Flags[head] & (byte)(PageFlags.Allocated | PageFlags.Lru | PageFlags.Isolated)) != (byte)PageFlags.Allocated)
            {
                return IsLru(head) ? LruPageRefused(head, "put_page") : NotAllocatedHead(IndexOf(pfn), "put_page");
            }
            if (CheckOwner(head, 1, owner, "put_page") is { } notOwner)
            {
                return notOwner;
            }
            var compound = (Flags[head] & (byte)PageFlags.Head) != 0;
            order = Order[head];
            if (!compound && order > 0 && RefCount[head] == 1)
            {
                return new PageError(PageErrorKind.NonCompoundPut,
                    $"put_page: pfn {Hex(PfnOf(head))} heads a non-compound order-{order} allocation; dropping its last "
                    + $"reference with put_page would free only the head and leak {(1 << order) - 1} pages. Use free_pages with order {order}.");
            }
            remaining = --RefCount[head];
            if (remaining == 0)
            {
                leaked = PrepareFree(head, order, compound, _trace.Enabled);
            }
        }
        if (remaining == 0 && !leaked)
        {
            FreeFrozenPages(head, order, cpu);
        }
        return new RefcountResult(pfn, remaining, remaining == 0 && !leaked);
    }

    /// <summary>
    /// split_page(): a non-compound order-n allocation becomes 2^n order-0 pages, each with
    /// refcount 1 (set_page_refcounted() on every tail). Compound and free pages are refused
    /// (VM_BUG_ON_PAGE(PageCompound) / !page_count in the kernel).
    /// </summary>
    public PageResult<SplitResult> SplitPage(long pfn, int order, Memcg? owner = null)
    {
        if (CheckBlock(pfn, order) is { } error)
        {
            return error;
        }
        var idx = IndexOf(pfn);
        using var _ = RefLock.Enter();
        if (RefCount[idx] <= 0 || (Flags[idx] & (byte)(PageFlags.Allocated | PageFlags.Lru | PageFlags.Isolated)) != (byte)PageFlags.Allocated)
        {
            return IsLru(idx) ? LruPageRefused(idx, "split_page") : NotAllocatedHead(idx, "split_page");
        }
        if ((Flags[idx] & (byte)PageFlags.Head) != 0)
        {
            return new PageError(PageErrorKind.CompoundPage,
                $"split_page: pfn {Hex(pfn)} is an order-{Order[idx]} compound page (__GFP_COMP); only non-compound pages can be split.");
        }
        if (Order[idx] != order)
        {
            return new PageError(PageErrorKind.WrongOrder,
                $"split_page: pfn {Hex(pfn)} heads an order-{Order[idx]} allocation, not order {order}.");
        }
        if (CheckOwner(idx, 1, owner, "split_page") is { } notOwner)
        {
            return notOwner;
        }
        var tails = (1 << order) - 1;
        RefCount.AsSpan(idx + 1, tails).Fill(1);
        Flags.AsSpan(idx + 1, tails).Fill((byte)PageFlags.Allocated);
        Order[idx] = 0; // only heads carry an order: the tails already read 0
        SplitMemcg(idx, order);

        return new SplitResult(pfn, order, 1 << order);
    }

    /// <summary>
    /// memory_failure()'s SetPageHWPoison on an in-use order-0 page: the page stays with its user,
    /// and when it is freed free_pages_prepare() refuses it, so it never returns to the allocator.
    /// </summary>
    public PageResult<RefcountResult> SetHwPoison(long pfn, Memcg? owner = null)
    {
        if (CheckRange(pfn, 1) is { } error)
        {
            return error;
        }
        var idx = IndexOf(pfn);
        using var _ = RefLock.Enter();
        if (RefCount[idx] <= 0 || (Flags[idx] & (byte)(PageFlags.Allocated | PageFlags.Lru | PageFlags.Isolated)) != (byte)PageFlags.Allocated)
        {
            // memory_failure() on a page-cache page would truncate it (not modelled): refused instead.
            return IsLru(idx) ? LruPageRefused(idx, "hwpoison") : NotAllocatedHead(idx, "hwpoison");
        }
        if (Order[idx] != 0 || (Flags[idx] & (byte)PageFlags.Head) != 0)
        {
            return new PageError(PageErrorKind.NotSplit,
                $"hwpoison: pfn {Hex(pfn)} heads an order-{Order[idx]} block; PageAlloc poisons order-0 pages only.");
        }
        if (CheckOwner(idx, 1, owner, "hwpoison") is { } notOwner)
        {
            return notOwner;
        }
        if ((Flags[idx] & (byte)PageFlags.HwPoison) == 0)
        {
            Flags[idx] |= (byte)PageFlags.HwPoison;
            _hwPoisonInUse++;
        }
        return new RefcountResult(pfn, RefCount[idx], false);
    }
}

/// <summary>The page's refcount after the call, and whether the call freed it.</summary>
public readonly record struct RefcountResult(long Pfn, int Refcount, bool Freed);

public readonly record struct SplitResult(long Pfn, int Order, int Pages);
