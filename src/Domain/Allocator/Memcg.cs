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

    /// <summary>
    /// try_charge_memcg() without reclaim: charge, or refuse when past memory.max. The kernel's
    /// page_counter_try_charge() adds first and takes the charge back when the sum passed the limit,
    /// so a racing reader can see usage above memory.max for a moment and two racing charges can both
    /// be refused where one would fit; a compare-and-swap here keeps memory.current at or under
    /// memory.max whenever it is read, and refuses only a charge that does not fit.
    /// </summary>
    internal bool TryCharge(long pages)
    {
        for (var usage = Volatile.Read(ref _usage); ;)
        {
            if (usage + pages > MaxPages)
            {
                Interlocked.Increment(ref _maxEvents);
                return false;
            }
            var seen = Interlocked.CompareExchange(ref _usage, usage + pages, usage);
            if (seen == usage)
            {
                return true;
            }
            usage = seen;
        }
    }

    internal void Uncharge(long pages) => Interlocked.Add(ref _usage, -pages);

    /// <summary>Takes over memory.current and the max events of a snapshot or of the machine forked, before anyone charges.</summary>
    internal void Restore(long usagePages, long maxEvents)
    {
        _usage = usagePages;
        _maxEvents = maxEvents;
    }
}
