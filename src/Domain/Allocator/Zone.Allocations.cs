using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Allocator;

// The zone's live allocations, for a client that lost track of its own.
public sealed partial class Zone
{
    /// <summary>
    /// The live allocations of the zone from <paramref name="fromPfn"/> on, at most
    /// <paramref name="max"/>, in pfn order; only those charged to <paramref name="owner"/> when it
    /// is given. What /sys/kernel/debug/page_owner lists (a head, its order), filtered by memcg as
    /// page_owner_filter tools do by cgroup. <paramref name="next"/> is the pfn to go on from, or
    /// null when the zone is done. Taken under every lock, as <see cref="GetPageState"/> is.
    /// </summary>
    public IReadOnlyList<Allocation> Allocations(Memcg? owner, long fromPfn, int max, out long? next)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        var found = new List<Allocation>();
        next = null;
        using var _ = LockAll();
        var start = (int)Math.Clamp(fromPfn - StartPfn, 0, SpannedPages);
        for (var idx = start; idx < SpannedPages; idx++)
        {
            var flags = (PageFlags)Flags[idx];
            // The system's LRU pages (page cache, anon) are nobody's allocation: they are not listed.
            if ((flags & (PageFlags.Allocated | PageFlags.Lru | PageFlags.Isolated)) != PageFlags.Allocated || (owner is not null && MemcgOf(PfnOf(idx)) != owner))
            {
                continue;
            }
            if (found.Count == max)
            {
                next = PfnOf(idx);
                break;
            }
            found.Add(new Allocation(PfnOf(idx), Order[idx], RefCount[idx], (flags & PageFlags.Head) != 0));
            idx += (1 << Order[idx]) - 1; // a block's tails are not allocations of their own
        }
        return found;
    }
}

/// <summary>A live allocation: its head, its order, the head's references, and whether it is a compound page.</summary>
public readonly record struct Allocation(long Pfn, int Order, int Refcount, bool Compound);
