using System.Diagnostics.Metrics;
using PageAlloc.Api.Machines;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Api.Observability;

/// <summary>
/// The meter "PageAlloc": the allocator's counters as metrics, mirroring /proc/vmstat,
/// /proc/pagetypeinfo and lock_stat. Every instrument is observable: nothing is recorded on the
/// allocation and free paths; a scrape reads each zone's counters without its locks
/// (<see cref="Zone.Counters"/>). Tags are bounded: machine (at most Limits:MaxMachines), silo (this one), zone,
/// order (0..10), migratetype, cpu, lock.
/// </summary>
public sealed class PageAllocMetrics
{
    public const string MeterName = "PageAlloc";

    private static readonly string[] LockNames = ["zone", "pcp", "refcount"];

    private readonly MachineRegistry _machines;

    public PageAllocMetrics(IMeterFactory meters, MachineRegistry machines)
    {
        _machines = machines;
        var meter = meters.Create(MeterName);
        meter.CreateObservableCounter("pagealloc.pages.allocated", () => PerZone(c => c.Event(VmEvent.PgAlloc)), "{page}",
            "Pages allocated from the zone (vmstat pgalloc_<zone>).");
        meter.CreateObservableCounter("pagealloc.pages.freed", () => PerZone(c => c.Event(VmEvent.PgFree)), "{page}",
            "Pages freed to the zone's pcp lists or buddy (vmstat pgfree).");
        meter.CreateObservableCounter("pagealloc.allocations", () => PerZoneAndOrder(c => c.AllocsByOrder), "{block}",
            "Blocks allocated, by order.");
        meter.CreateObservableCounter("pagealloc.frees", () => PerZoneAndOrder(c => c.FreesByOrder), "{block}",
            "Blocks freed to the pcp lists or the buddy, by order.");
        meter.CreateObservableCounter("pagealloc.allocation.failures", () => PerZone(c => c.Event(VmEvent.AllocFail)), "{allocation}",
            "alloc_pages() calls that failed with the zone as the preferred zone.");
        meter.CreateObservableCounter("pagealloc.allocation.injected_failures", InjectedFailures, "{allocation}",
            "alloc_pages() calls failed on purpose by fail_page_alloc (machine-wide, counted apart from real failures).");
        meter.CreateObservableCounter("pagealloc.allocations.abandoned", AbandonedAllocations, "{allocation}",
            "Allocations freed again because their client hung up before the answer was written.");
        meter.CreateObservableGauge("pagealloc.free.blocks", FreeBlocks, "{block}",
            "Free blocks in the buddy, by order and migratetype (/proc/pagetypeinfo).");
        meter.CreateObservableGauge("pagealloc.free.pages", () => PerZone(c => c.FreePages), "{page}",
            "Pages free in the buddy (nr_free_pages; pages on pcp lists not included).");
        meter.CreateObservableGauge("pagealloc.pcp.pages", PcpPages, "{page}",
            "Pages on each cpu's pcp lists.");
        meter.CreateObservableCounter("pagealloc.pcp.refills", () => PerZone(c => c.Event(VmEvent.PcpRefill)), "{refill}",
            "rmqueue_bulk() calls that refilled a pcp list.");
        meter.CreateObservableCounter("pagealloc.pcp.drains", () => PerZone(c => c.Event(VmEvent.PcpDrain)), "{drain}",
            "free_pcppages_bulk() calls that returned pcp pages to the buddy.");
        meter.CreateObservableCounter("pagealloc.fallbacks", Fallbacks, "{fallback}",
            "Allocations that fell back to another migratetype (mm_page_alloc_extfrag): kind claim or steal.");
        meter.CreateObservableCounter("pagealloc.lock.acquisitions", () => PerLock(l => l.Acquisitions), "{acquisition}",
            "Lock acquisitions (lock_stat acquisitions): zone->lock, the pcp locks, the refcount lock.");
        meter.CreateObservableCounter("pagealloc.lock.contentions", () => PerLock(l => l.Contended), "{contention}",
            "Acquisitions that found the lock held (lock_stat contentions).");
        meter.CreateObservableCounter("pagealloc.lock.wait.time", () => PerLockSeconds(l => l.WaitNs), "s",
            "Time spent waiting for the lock (lock_stat waittime-total).");
        // Unitless on purpose: the Prometheus exporter would name a unit of "1" _ratio.
        meter.CreateObservableGauge("pagealloc.lru.pages", LruPages, "{page}",
            "Pages on each LRU list (nr_zone_inactive_file and friends): the system's page cache and anon pages.");
        meter.CreateObservableCounter("pagealloc.vmscan.events", VmscanEvents, "{event}",
            "Reclaim's vm events (/proc/vmstat's pgscan_*, pgsteal_*, allocstall_*, pageoutrun, drop_pagecache, ...), by event.");
        meter.CreateObservableGauge("pagealloc.fragmentation.unusable_index", () => PerZoneAndOrderIndex(Fragmentation.UnusableIndex), null,
            "unusable_free_index() per order, 0..1: the share of free memory in blocks smaller than the order (debugfs extfrag/unusable_index).");
        meter.CreateObservableGauge("pagealloc.fragmentation.extfrag_index", () => PerZoneAndOrderIndex(Fragmentation.ExtfragIndex), null,
            "__fragmentation_index() per order: -1 where a block of the order is free, else 0 (short of memory) to 1 (fragmented) (debugfs extfrag/extfrag_index).");
    }

    /// <summary>A fragmentation index (in thousandths, as the kernel computes it) of every zone at every order, as a fraction.</summary>
    private IEnumerable<Measurement<double>> PerZoneAndOrderIndex(Func<IReadOnlyList<long>, int, int> index) =>
        Zones().SelectMany(z =>
        {
            var nrFree = new long[PageAllocConstants.NrPageOrders];
            foreach (var byOrder in z.Counters.FreeBlocksByType)
            {
                for (var order = 0; order < nrFree.Length; order++)
                {
                    nrFree[order] += byOrder[order];
                }
            }
            return nrFree.Select((_, order) => new Measurement<double>(index(nrFree, order) / 1000.0,
                Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("order", order)));
        });

    /// <summary>Every booted machine's zones' counters, with the machine's name.</summary>
    private List<(string Machine, ZoneCounters Counters)> Zones() =>
        [.. _machines.All.Where(m => m.IsBooted).SelectMany(m => m.Machine.Zones.Select(z => (m.Name, z.Counters())))];

    private static KeyValuePair<string, object?> Machine(string name) => new("machine", name);

    /// <summary>The silo this process is: each silo exports the machines activated on it, so the pair (machine, silo) says where a series came from.</summary>
    private KeyValuePair<string, object?> Silo => new("silo", _machines.SiloAddress);

    private IEnumerable<Measurement<long>> PerZone(Func<ZoneCounters, long> read) =>
        Zones().Select(z => new Measurement<long>(read(z.Counters), Machine(z.Machine), Silo, new("zone", z.Counters.Zone)));

    private IEnumerable<Measurement<long>> PerZoneAndOrder(Func<ZoneCounters, long[]> read) =>
        Zones().SelectMany(z => read(z.Counters).Select((n, order) =>
            new Measurement<long>(n, Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("order", order))));

    private IEnumerable<Measurement<long>> LruPages() =>
        Zones().SelectMany(z => z.Counters.LruPages.Select((n, lru) =>
            new Measurement<long>(n, Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("lru", LruLists.Name((LruList)lru)))));

    private IEnumerable<Measurement<long>> VmscanEvents() =>
        _machines.All.Where(m => m.IsBooted).SelectMany(m => m.Machine.Vmscan.Counters.Read().Select((n, e) =>
            new Measurement<long>(n, Machine(m.Name), Silo, new("event", Domain.Reclaim.VmscanEvents.Names[e]))));

    private IEnumerable<Measurement<long>> InjectedFailures() =>
        _machines.All.Where(m => m.IsBooted).Select(m => new Measurement<long>(m.Machine.FailPageAlloc.Injected, Machine(m.Name), Silo));

    private IEnumerable<Measurement<long>> AbandonedAllocations() =>
        _machines.All.Where(m => m.IsBooted).Select(m => new Measurement<long>(m.AbandonedAllocations, Machine(m.Name), Silo));

    private IEnumerable<Measurement<long>> FreeBlocks() =>
        Zones().SelectMany(z => z.Counters.FreeBlocksByType.SelectMany((orders, mt) => orders.Select((n, order) =>
            new Measurement<long>(n, Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("order", order), new("migratetype", MigrateTypes.Name((MigrateType)mt))))));

    private IEnumerable<Measurement<long>> PcpPages() =>
        Zones().SelectMany(z => z.Counters.PcpPagesByCpu.Select((n, cpu) =>
            new Measurement<long>(n, Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("cpu", cpu))));

    private IEnumerable<Measurement<long>> Fallbacks() =>
        Zones().SelectMany(z => new[]
        {
            new Measurement<long>(z.Counters.Event(VmEvent.FallbackClaim), Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("kind", "claim")),
            new Measurement<long>(z.Counters.Event(VmEvent.FallbackSteal), Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("kind", "steal")),
        });

    private IEnumerable<Measurement<long>> PerLock(Func<LockStats, long> read) =>
        Zones().SelectMany(z => Locks(z.Counters).Select((l, i) =>
            new Measurement<long>(read(l), Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("lock", LockNames[i]))));

    private IEnumerable<Measurement<double>> PerLockSeconds(Func<LockStats, long> readNs) =>
        Zones().SelectMany(z => Locks(z.Counters).Select((l, i) =>
            new Measurement<double>(readNs(l) / 1e9, Machine(z.Machine), Silo, new("zone", z.Counters.Zone), new("lock", LockNames[i]))));

    private static LockStats[] Locks(ZoneCounters c) => [c.ZoneLock, c.PcpLocks, c.RefLock];
}
