namespace PageAlloc.Domain.Allocator;

/// <summary>
/// A set of doubly linked lists threaded through per-page next/prev index arrays, as the kernel
/// threads struct list_head through struct page: O(1) add at either end and O(1) unlink of any
/// member. Several sets share the same link arrays (free_area lists and pcp lists use one union in
/// struct page too); a page is on at most one list at a time. -1 is the null link.
/// </summary>
internal sealed class IntrusiveLists
{
    public const int Nil = -1;

    private readonly int[] _next;
    private readonly int[] _prev;
    private readonly int[] _head;
    private readonly int[] _tail;

    public IntrusiveLists(int[] next, int[] prev, int listCount)
    {
        _next = next;
        _prev = prev;
        _head = new int[listCount];
        _tail = new int[listCount];
        Array.Fill(_head, Nil);
        Array.Fill(_tail, Nil);
    }

    public int ListCount => _head.Length;

    public bool IsEmpty(int list) => _head[list] == Nil;

    public int First(int list) => _head[list];

    public int Last(int list) => _tail[list];

    public int Next(int page) => _next[page];

    public int Prev(int page) => _prev[page];

    /// <summary>list_add().</summary>
    public void AddHead(int list, int page)
    {
        var first = _head[list];
        _next[page] = first;
        _prev[page] = Nil;
        if (first == Nil)
        {
            _tail[list] = page;
        }
        else
        {
            _prev[first] = page;
        }
        _head[list] = page;
    }

    /// <summary>list_add_tail().</summary>
    public void AddTail(int list, int page)
    {
        var last = _tail[list];
        _prev[page] = last;
        _next[page] = Nil;
        if (last == Nil)
        {
            _head[list] = page;
        }
        else
        {
            _next[last] = page;
        }
        _tail[list] = page;
    }

    /// <summary>list_del().</summary>
    public void Remove(int list, int page)
    {
        var next = _next[page];
        var prev = _prev[page];
        if (prev == Nil)
        {
            _head[list] = next;
        }
        else
        {
            _next[prev] = next;
        }
        if (next == Nil)
        {
            _tail[list] = prev;
        }
        else
        {
            _prev[next] = prev;
        }
        _next[page] = Nil;
        _prev[page] = Nil;
    }
}
