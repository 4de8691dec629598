using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// Statistics: every counter is kept as the allocator runs, so a snapshot costs
// O(orders x migratetypes + cpus), never O(pages).
public sealed partial class Zone
{
    /// <summary>
    /// Takes every lock of the zone in the order the allocator takes them (each pcp lock, then
    /// zone->lock, then the refcount lock, which is never held while taking another), for a
    /// consistent view.
    /// </summary>
    internal AllLocksScope LockAll()
    {
        foreach (var pcp in _pcp)
        {
            pcp.Lock.Enter();
        }
        ZoneLock.Enter();
        RefLock.Enter();
        return new AllLocksScope(this);
    }

    internal readonly ref struct AllLocksScope
    {
        private readonly Zone _zone;

        public AllLocksScope(Zone zone) => _zone = zone;

        public void Dispose()
        {
            _zone.RefLock.Exit();
            _zone.ZoneLock.Exit();
            for (var i = _zone._pcp.Length - 1; i >= 0; i--)
            {
                _zone._pcp[i].Lock.Exit();
            }
        }
    }

    /// <summary>A consistent snapshot of the zone's counters.</summary>
    public ZoneStats Stats()
    {
        using var _ = LockAll();
        return StatsLocked();
    }

    /// <summary>
    /// The counters kept as blocks per order (the cheapest thing to count on the hot paths: one
    /// increment per allocation or free) give pgalloc and pgfree in pages, and the allocations by source.
    /// </summary>
    private static void AddBlockCounts(long[] events, long[] allocsByOrder, long[] freesByOrder, VmEvent source)
    {
        for (var order = 0; order < NrPageOrders; order++)
        {
            var allocs = Volatile.Read(ref allocsByOrder[order]);
            events[(int)VmEvent.PgAlloc] += allocs << order;
            events[(int)source] += allocs;
            events[(int)VmEvent.PgFree] += Volatile.Read(ref freesByOrder[order]) << order;
        }
    }

    private ZoneStats StatsLocked()
    {
        var byType = new long[MigrateTypes.Count][];
        for (var mt = 0; mt < MigrateTypes.Count; mt++)
        {
            byType[mt] = new long[NrPageOrders];
            for (var order = 0; order < NrPageOrders; order++)
            {
                byType[mt][order] = _nrFreeByType[FreeListId(order, (MigrateType)mt)];
            }
        }
        var pageblocks = new long[MigrateTypes.Count];
        foreach (var mt in _pageblockMt)
        {
            pageblocks[mt]++;
        }
        var events = (long[])_events.Clone();
        events[(int)VmEvent.HwPoisonLeaked] = _hwPoisonLeaked;
        AddBlockCounts(events, _allocsByOrder, _freesByOrder, VmEvent.AllocFromBuddy);
        var pcps = new PcpStats[_pcp.Length];
        var pcpBlocks = new long[NrPageOrders];
        long pcpPages = 0;
        for (var cpu = 0; cpu < _pcp.Length; cpu++)
        {
            var p = _pcp[cpu];
            pcps[cpu] = new PcpStats(cpu, p.Count, p.High, p.Batch, p.HighMin, p.HighMax);
            pcpPages += p.Count;
            for (var pindex = 0; pindex < PerCpuPages.NrPcpLists; pindex++)
            {
                pcpBlocks[PerCpuPages.PindexToOrder(pindex)] += p.ListBlocks[pindex];
            }
            for (var e = 0; e < VmEvents.Count; e++)
            {
                events[e] += p.Events[e];
            }
            AddBlockCounts(events, p.AllocsByOrder, p.FreesByOrder, VmEvent.AllocFromPcp);
        }
        var locks = new LockStats[ZoneStats.LockCount];
        locks[ZoneStats.ZoneLockIndex] = ZoneLock.Snapshot();
        locks[ZoneStats.PcpLocksIndex] = LockStats.Sum($"{Key} pcp->lock (all cpus)", _pcp.Select(p => p.Lock.Snapshot()));
        locks[ZoneStats.RefLockIndex] = RefLock.Snapshot();
        return new ZoneStats(
            Key, NodeId, Type, StartPfn, SpannedPages, ManagedPages,
            _freePages, pcpPages, ManagedPages - _freePages - pcpPages - _hwPoisonLeaked, _hwPoisonLeaked,
            Watermarks, [.. LowmemReserve], (long[])_nrFree.Clone(), byType, pageblocks, pcpBlocks, pcps, events, locks,
            ReservedHighatomicPages, FreeHighatomicPages)
        {
            LruPages = [.. _lruPages],
            WatermarkBoost = _watermarkBoost,
        };
    }
}

/// <summary>One CPU's pcp for this zone, as /proc/zoneinfo's pagesets show it.</summary>
public sealed record PcpStats(int Cpu, int Count, int High, int Batch, int HighMin, int HighMax);

/// <summary>
/// A zone's counters. NrFree counts blocks per order (buddyinfo); NrFreeByType[mt][order] counts
/// blocks per migratetype and order (pagetypeinfo); PageblocksByType[mt] counts pageblocks.
/// PcpBlocksByOrder[order] counts blocks on all CPUs' pcp lists. Events are indexed by
/// <see cref="VmEvent"/>. AllocatedPages = managed - free - pcp - leaked. ReservedHighatomic and
/// FreeHighatomic are zone->nr_reserved_highatomic and nr_free_highatomic (pages).
/// </summary>
public sealed record ZoneStats(
    string Zone,
    int Node,
    ZoneType Type,
    long StartPfn,
    long SpannedPages,
    long ManagedPages,
    long FreePages,
    long PcpPages,
    long AllocatedPages,
    long HwPoisonLeakedPages,
    Watermarks Watermarks,
    long[] LowmemReserve,
    long[] NrFree,
    long[][] NrFreeByType,
    long[] PageblocksByType,
    long[] PcpBlocksByOrder,
    PcpStats[] Pcp,
    long[] Events,
    LockStats[] Locks,
    long ReservedHighatomic = 0,
    long FreeHighatomic = 0)
{
    /// <summary>Pages on each LRU list (NR_ZONE_LRU_BASE + lru), indexed by <see cref="LruList"/>.</summary>
    public long[] LruPages { get; init; } = new long[LruLists.Count];

    public long Lru(LruList lru) => LruPages[(int)lru];

    /// <summary>zone->watermark_boost (Watermarks already include it, as wmark_pages() does).</summary>
    public long WatermarkBoost { get; init; }

    public long Event(VmEvent e) => Events[(int)e];

    /// <summary>Where each lock sits in <see cref="Locks"/> (the order the API lists them in).</summary>
    public const int ZoneLockIndex = 0, PcpLocksIndex = 1, RefLockIndex = 2, LockCount = 3;

    /// <summary>zone->lock.</summary>
    public LockStats ZoneLock => Locks[ZoneLockIndex];

    /// <summary>Every cpu's pcp->lock, summed.</summary>
    public LockStats PcpLocks => Locks[PcpLocksIndex];

    /// <summary>The refcount lock (PageAlloc's stand-in for per-page atomics).</summary>
    public LockStats RefLock => Locks[RefLockIndex];
}
