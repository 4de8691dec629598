using System.Runtime.CompilerServices;

namespace PageAlloc.Domain.Allocator;

/// <summary>The null link, and the list sets' two ways of placing links.</summary>
internal static class IntrusiveLists
{
    public const int Nil = -1;

    /// <summary>Lists whose links are kept per page, in arrays shared with other sets.</summary>
    public static IntrusiveLists<PerPageLinks> PerPage(int[] next, int[] prev, int listCount) =>
        new(next, prev, listCount, default);

    /// <summary>
    /// Lists of blocks of one order, each starting at a pfn aligned to 2^order: one link slot per
    /// block instead of one per page. <paramref name="offset"/> aligns page indices to the pfns.
    /// </summary>
    public static IntrusiveLists<PerAlignedBlockLinks> ForAlignedBlocks(int pages, int order, int offset, int listCount)
    {
        var slots = ((pages - 1 + offset) >> order) + 1;
        return new(new int[slots], new int[slots], listCount, new PerAlignedBlockLinks(order, offset));
    }
}

/// <summary>Where a page's links sit in the link arrays.</summary>
internal interface ILinkSlots
{
    int Slot(int page);
}

/// <summary>One slot per page: the page index itself (the JIT folds it away).</summary>
internal readonly struct PerPageLinks : ILinkSlots
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Slot(int page) => page;
}

/// <summary>One slot per naturally aligned block of 2^shift pages.</summary>
internal readonly struct PerAlignedBlockLinks(int shift, int offset) : ILinkSlots
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Slot(int page) => (page + offset) >> shift;
}

/// <summary>
/// A set of doubly linked lists threaded through next/prev index arrays, as the kernel threads
/// struct list_head through struct page: O(1) add at either end and O(1) unlink of any member.
/// Several per-page sets share the same link arrays (free_area lists and pcp lists use one union in
/// struct page too); a page is on at most one list at a time. <typeparamref name="TSlots"/> says
/// where a page's links sit, specialised by the JIT so the per-page case costs nothing.
/// </summary>
internal sealed class IntrusiveLists<TSlots>
    where TSlots : struct, ILinkSlots
{
    private readonly int[] _next;
    private readonly int[] _prev;
    private readonly int[] _head;
    private readonly int[] _tail;
    private readonly TSlots _slots;

    public IntrusiveLists(int[] next, int[] prev, int listCount, TSlots slots)
    {
        _next = next;
        _prev = prev;
        _slots = slots;
        _head = new int[listCount];
        _tail = new int[listCount];
        Array.Fill(_head, IntrusiveLists.Nil);
        Array.Fill(_tail, IntrusiveLists.Nil);
    }

    public bool IsEmpty(int list) => _head[list] == IntrusiveLists.Nil;

    /// <summary>
    /// Takes over another set's heads and tails (a fork). The links are copied with them only when
    /// <paramref name="links"/> says this set owns its link arrays; per-page sets share the zone's
    /// Next and Prev, which the zone copies once for all of them.
    /// </summary>
    public void CopyFrom(IntrusiveLists<TSlots> source, bool links)
    {
        source._head.CopyTo(_head, 0);
        source._tail.CopyTo(_tail, 0);
        if (links)
        {
            source._next.CopyTo(_next, 0);
            source._prev.CopyTo(_prev, 0);
        }
    }

    public int First(int list) => _head[list];

    public int Last(int list) => _tail[list];

    public int Next(int page) => _next[_slots.Slot(page)];

    public int Prev(int page) => _prev[_slots.Slot(page)];

    /// <summary>list_add().</summary>
    public void AddHead(int list, int page)
    {
        var first = _head[list];
        _next[_slots.Slot(page)] = first;
        _prev[_slots.Slot(page)] = IntrusiveLists.Nil;
        if (first == IntrusiveLists.Nil)
        {
            _tail[list] = page;
        }
        else
        {
            _prev[_slots.Slot(first)] = page;
        }
        _head[list] = page;
    }

    /// <summary>list_add_tail().</summary>
    public void AddTail(int list, int page)
    {
        var last = _tail[list];
        _prev[_slots.Slot(page)] = last;
        _next[_slots.Slot(page)] = IntrusiveLists.Nil;
        if (last == IntrusiveLists.Nil)
        {
            _head[list] = page;
        }
        else
        {
            _next[_slots.Slot(last)] = page;
        }
        _tail[list] = page;
    }

    /// <summary>list_del().</summary>
    public void Remove(int list, int page)
    {
        var next = _next[_slots.Slot(page)];
        var prev = _prev[_slots.Slot(page)];
        if (prev == IntrusiveLists.Nil)
        {
            _head[list] = next;
        }
        else
        {
            _next[_slots.Slot(prev)] = next;
        }
        if (next == IntrusiveLists.Nil)
        {
            _tail[list] = prev;
        }
        else
        {
            _prev[_slots.Slot(next)] = prev;
        }
        _next[_slots.Slot(page)] = IntrusiveLists.Nil;
        _prev[_slots.Slot(page)] = IntrusiveLists.Nil;
    }
}
