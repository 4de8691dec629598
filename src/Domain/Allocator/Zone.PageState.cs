using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Allocator;

// Reading one page's state, as a user inspecting the allocator sees it.
public sealed partial class Zone
{
    /// <summary>The state of one page: its own fields and the block that holds it.</summary>
    public PageResult<PageState> GetPageState(long pfn)
    {
        if (CheckRange(pfn, 1) is { } error)
        {
            return error;
        }
        using var _ = LockAll();
        var idx = IndexOf(pfn);
        var (head, order, where) = LocateBlock(idx);
        int? cpu = null;
        if (where == PageLocation.Pcp)
        {
            cpu = _pcp.FirstOrDefault(p => Enumerable.Range(0, PerCpuPages.NrPcpLists).Any(l => ListContains(p.Lists, l, head)))?.Cpu;
        }
        var flags = (PageFlags)Flags[idx];
        var names = Enum.GetValues<PageFlags>()
            .Where(f => f != PageFlags.None && flags.HasFlag(f))
            .Select(f => f.ToString().ToLowerInvariant())
            .ToArray();
        var compound = (Flags[head] & (byte)PageFlags.Head) != 0;
        return new PageState(pfn, RefCount[idx], names, where, PfnOf(head), order, compound, cpu, PageblockMigrateType(idx));
    }

    private static bool ListContains(IntrusiveLists<PerPageLinks> lists, int list, int idx)
    {
        for (var i = lists.First(list); i != IntrusiveLists.Nil; i = lists.Next(i))
        {
            if (i == idx)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The pfns on one free list, head first. For tests and the invariant checker's users.</summary>
    internal List<long> FreeListPfns(int order, MigrateType mt)
    {
        using var _ = ZoneLock.Enter();
        var pfns = new List<long>();
        var list = FreeListId(order, mt);
        for (var i = FreeListFirst(order, list); i != IntrusiveLists.Nil; i = FreeListNext(order, i))
        {
            pfns.Add(PfnOf(i));
        }
        return pfns;
    }
}

/// <summary>Where a page is.</summary>
public enum PageLocation
{
    /// <summary>In a block on a zone free list.</summary>
    Buddy,

    /// <summary>In a block on a per-CPU page list.</summary>
    Pcp,

    /// <summary>In a live allocation.</summary>
    Allocated,

    /// <summary>HWPoison, freed and taken out of use.</summary>
    HwPoisonLeaked,

    /// <summary>
    /// Frozen: its refcount has just reached zero and the free that dropped it is handing it back to
    /// the pcp or the buddy (free_frozen_pages()); no other call can take or free it meanwhile.
    /// </summary>
    Frozen,
}

/// <summary>
/// One page: its refcount and flags, where it is, the head and order of the block that holds it,
/// the cpu whose pcp list holds it, and its pageblock's migratetype.
/// </summary>
public sealed record PageState(
    long Pfn,
    int Refcount,
    IReadOnlyList<string> Flags,
    PageLocation Where,
    long BlockPfn,
    int BlockOrder,
    bool Compound,
    int? Cpu,
    MigrateType PageblockMigrateType);
