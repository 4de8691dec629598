using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Allocator;

// Memory cgroup charges kept per page, as page->memcg_data: the id of the memcg an allocation is
// charged to sits on the head of the block (on every page once split_page() has run, as
// split_page_memcg() does). Only machines with memcgs keep the array, so the others pay nothing.
public sealed partial class Zone
{
    /// <summary>page->memcg_data as a memcg id per page; null when the machine has no memcgs.</summary>
    private ushort[]? _memcgIds;

    /// <summary>The machine's memcgs by id (index 0 unused: "charged to none").</summary>
    private Memcg?[] _memcgs = [];

    internal void UseMemcgs(Memcg?[] byId)
    {
        _memcgs = byId;
        _memcgIds = new ushort[SpannedPages];
    }

    /// <summary>Records the charge of a new allocation on its head (the memcg was charged before).</summary>
    internal void SetMemcg(int head, Memcg memcg) => _memcgIds![head] = memcg.Id;

    /// <summary>The memcg a page is charged to, or null.</summary>
    public Memcg? MemcgOf(long pfn) => _memcgIds is null || !Contains(pfn) ? null : _memcgs[_memcgIds[IndexOf(pfn)]];

    /// <summary>
    /// PageAlloc's own access rule, not the kernel's: a caller acting for a memcg may only touch
    /// pages charged to it. Null (no memcgs, or an administrator) may touch any. Caller holds RefLock.
    /// </summary>
    private PageError? CheckOwner(int idx, int n, Memcg? owner, string operation)
    {
        if (owner is null || _memcgIds is null)
        {
            return null;
        }
        var other = _memcgIds.AsSpan(idx, n).IndexOfAnyExcept(owner.Id);
        if (other < 0)
        {
            return null;
        }
        var holder = _memcgs[_memcgIds[idx + other]]?.Name ?? "no memcg";
        return new PageError(PageErrorKind.NotOwner,
            $"{operation}: pfn {Hex(PfnOf(idx + other))} is charged to {holder}, not to {owner.Name}; only its owner or an administrator may change it.");
    }

    /// <summary>
    /// __memcg_kmem_uncharge_page() for a block headed at idx whose pages (all of them, or only its
    /// tails when <paramref name="keepHead"/>) were just freed. Caller holds RefLock.
    /// </summary>
    private void Uncharge(int idx, long pages, bool keepHead = false)
    {
        if (_memcgIds is not null && _memcgs[_memcgIds[idx]] is { } memcg)
        {
            memcg.Uncharge(pages);
            if (!keepHead)
            {
                _memcgIds[idx] = 0;
            }
        }
    }

    /// <summary>Uncharges n order-0 pages that were just freed, each charged on its own. Caller holds RefLock.</summary>
    private void UnchargeRange(int idx, int n)
    {
        if (_memcgIds is null)
        {
            return;
        }
        var ids = _memcgIds.AsSpan(idx, n);
        for (var i = 0; i < n;)
        {
            var id = ids[i];
            var run = ids[i..].IndexOfAnyExcept(id);
            run = run < 0 ? n - i : run;
            _memcgs[id]?.Uncharge(run);
            i += run;
        }
        ids.Clear();
    }

    /// <summary>split_page_memcg(): every page of a split block carries the head's charge.</summary>
    private void SplitMemcg(int idx, int order)
    {
        if (_memcgIds is not null)
        {
            _memcgIds.AsSpan(idx + 1, (1 << order) - 1).Fill(_memcgIds[idx]);
        }
    }

    /// <summary>
    /// 4. For the invariant checker: page->memcg_data only on pages in use (an allocation's head,
    /// each page of a split one); a leaked HWPoison page was uncharged when freed. A charge left on
    /// a free page would charge its next allocation that is not accounted. Steps from one charged
    /// page to the next, so a machine with few charges costs little. Caller holds every lock.
    /// </summary>
    private void CheckMemcgData(Action<string> report)
    {
        if (_memcgIds is null)
        {
            return;
        }
        var ids = _memcgIds.AsSpan();
        for (var i = ids.IndexOfAnyExcept((ushort)0); i >= 0;)
        {
            var flags = (PageFlags)Flags[i];
            if ((flags & PageFlags.Allocated) == 0)
            {
                report($"pfn {Hex(PfnOf(i))} is charged to memcg {_memcgs[ids[i]]?.Name ?? $"id {ids[i]}"} but not in use (flags {flags})");
            }
            var next = ids[(i + 1)..].IndexOfAnyExcept((ushort)0);
            i = next < 0 ? -1 : i + 1 + next;
        }
    }

    /// <summary>Pages charged to each memcg, counted from the page state (for the invariant checker).</summary>
    internal void CountCharges(long[] byMemcg)
    {
        if (_memcgIds is null)
        {
            return;
        }
        using var _ = LockAll();
        for (var i = 0; i < SpannedPages; i++)
        {
            var flags = (PageFlags)Flags[i];
            if ((flags & PageFlags.Allocated) != 0)
            {
                byMemcg[_memcgIds[i]] += 1L << Order[i];
            }
        }
    }
}
