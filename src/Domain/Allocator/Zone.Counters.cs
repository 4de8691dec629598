using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// The counters without a lock, as /proc/vmstat reads the kernel's per-cpu counters: each value is
// read once and may be a moment old, and two values may come from slightly different moments.
// For metrics scraped every few seconds, never for the consistent snapshot of Stats().
public sealed partial class Zone
{
    /// <summary>The zone's counters, read without taking any of its locks.</summary>
    public ZoneCounters Counters()
    {
        var events = new long[VmEvents.Count];
        var allocs = new long[NrPageOrders];
        var frees = new long[NrPageOrders];
        for (var e = 0; e < VmEvents.Count; e++)
        {
            events[e] = Volatile.Read(ref _events[e]);
        }
        AddBlockCounts(events, _allocsByOrder, _freesByOrder, VmEvent.AllocFromBuddy);
        var fromBuddy = new long[NrPageOrders];
        for (var order = 0; order < NrPageOrders; order++)
        {
            allocs[order] = fromBuddy[order] = Volatile.Read(ref _allocsByOrder[order]);
            frees[order] = Volatile.Read(ref _freesByOrder[order]);
        }
        var pcpPages = new long[_pcp.Length];
        for (var cpu = 0; cpu < _pcp.Length; cpu++)
        {
            var p = _pcp[cpu];
            pcpPages[cpu] = Volatile.Read(ref p.Count);
            for (var e = 0; e < VmEvents.Count; e++)
            {
                events[e] += Volatile.Read(ref p.Events[e]);
            }
            AddBlockCounts(events, p.AllocsByOrder, p.FreesByOrder, VmEvent.AllocFromPcp);
            for (var order = 0; order < NrPageOrders; order++)
            {
                allocs[order] += Volatile.Read(ref p.AllocsByOrder[order]);
                frees[order] += Volatile.Read(ref p.FreesByOrder[order]);
            }
        }
        events[(int)VmEvent.HwPoisonLeaked] = Volatile.Read(ref _hwPoisonLeaked);
        var byType = new long[MigrateTypes.Count][];
        for (var mt = 0; mt < MigrateTypes.Count; mt++)
        {
            byType[mt] = new long[NrPageOrders];
            for (var order = 0; order < NrPageOrders; order++)
            {
                byType[mt][order] = Volatile.Read(ref _nrFreeByType[FreeListId(order, (MigrateType)mt)]);
            }
        }
        return new ZoneCounters(Key, NodeId, Volatile.Read(ref _freePages), pcpPages, events, allocs, fromBuddy, frees, byType,
            ZoneLock.Snapshot(), LockStats.Sum($"{Key} pcp->lock (all cpus)", _pcp.Select(p => p.Lock.Snapshot())), RefLock.Snapshot())
        {
            LruPages = [.. Enum.GetValues<LruList>().Select(LruPages)],
        };
    }
}

/// <summary>
/// A zone's counters read without locks (<see cref="Zone.Counters"/>): free pages, pages on each
/// cpu's pcp, the vm events, blocks allocated (all, and straight from the buddy) and freed by order, free blocks by migratetype and
/// order, and the three locks' statistics.
/// </summary>
public sealed record ZoneCounters(
    string Zone,
    int Node,
    long FreePages,
    long[] PcpPagesByCpu,
    long[] Events,
    long[] AllocsByOrder,
    long[] BuddyAllocsByOrder,
    long[] FreesByOrder,
    long[][] FreeBlocksByType,
    LockStats ZoneLock,
    LockStats PcpLocks,
    LockStats RefLock)
{
    public long Event(VmEvent e) => Events[(int)e];

    /// <summary>Pages on each LRU list, indexed by <see cref="LruList"/>.</summary>
    public long[] LruPages { get; init; } = new long[LruLists.Count];
}
