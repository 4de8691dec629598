namespace PageAlloc.Domain.Allocator;

/// <summary>
/// struct mem_cgroup, the part that charges pages (mm/memcontrol.c): memory.current and
/// memory.max in pages, and memory.events' max count. An allocation with __GFP_ACCOUNT made for a
/// memcg is charged to it (__memcg_kmem_charge_page()), and the charge is dropped when the pages
/// are freed (__memcg_kmem_uncharge_page()). PageAlloc has no reclaim and no OOM killer, so a
/// charge that would pass memory.max fails at once where the kernel would first try to reclaim.
/// </summary>
public sealed class Memcg
{
    private long _usage;
    private long _maxEvents;

    internal Memcg(ushort id, string name, long maxPages)
    {
        Id = id;
        Name = name;
        MaxPages = maxPages;
    }

    /// <summary>The id kept in each charged page (page->memcg_data); 0 means charged to none.</summary>
    public ushort Id { get; }

    public string Name { get; }

    /// <summary>memory.max, in pages.</summary>
    public long MaxPages { get; }

    /// <summary>memory.current, in pages.</summary>
    public long UsagePages => Volatile.Read(ref _usage);

    /// <summary>memory.events "max": charges refused because they would pass memory.max.</summary>
    public long MaxEvents => Volatile.Read(ref _maxEvents);

    /// <summary>try_charge_memcg() without reclaim: charge, or refuse when past memory.max.</summary>
    internal bool TryCharge(long pages)
    {
        if (Interlocked.Add(ref _usage, pages) <= MaxPages)
        {
            return true;
        }
        Interlocked.Add(ref _usage, -pages);
        Interlocked.Increment(ref _maxEvents);
        return false;
    }

    internal void Uncharge(long pages) => Interlocked.Add(ref _usage, -pages);
}
