using System.Diagnostics.Metrics;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Observability;

/// <summary>
/// The meter "PageAlloc": the allocator's counters as metrics, mirroring /proc/vmstat,
/// /proc/pagetypeinfo and lock_stat. Every instrument is observable: nothing is recorded on the
/// allocation and free paths; a scrape reads each zone's counters without its locks
/// (<see cref="Zone.Counters"/>). Tags are bounded: zone, order (0..10), migratetype, cpu, lock.
/// </summary>
public sealed class PageAllocMetrics
{
    public const string MeterName = "PageAlloc";

    private static readonly string[] LockNames = ["zone", "pcp", "refcount"];

    private readonly MachineHost _host;

    public PageAllocMetrics(IMeterFactory meters, MachineHost host)
    {
        _host = host;
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
    }

    /// <summary>The served machine's zones' counters, or none while it boots.</summary>
    private List<ZoneCounters> Zones() =>
        _host.IsBooted ? [.. _host.Machine.Zones.Select(z => z.Counters())] : [];

    private static KeyValuePair<string, object?> Zone(ZoneCounters c) => new("zone", c.Zone);

    private IEnumerable<Measurement<long>> PerZone(Func<ZoneCounters, long> read) =>
        Zones().Select(c => new Measurement<long>(read(c), Zone(c)));

    private IEnumerable<Measurement<long>> PerZoneAndOrder(Func<ZoneCounters, long[]> read) =>
        Zones().SelectMany(c => read(c).Select((n, order) => new Measurement<long>(n, Zone(c), new("order", order))));

    private IEnumerable<Measurement<long>> InjectedFailures() =>
        _host.IsBooted ? [new Measurement<long>(_host.Machine.FailPageAlloc.Injected)] : [];

    private IEnumerable<Measurement<long>> FreeBlocks() =>
        Zones().SelectMany(c => c.FreeBlocksByType.SelectMany((orders, mt) => orders.Select((n, order) =>
            new Measurement<long>(n, Zone(c), new("order", order), new("migratetype", MigrateTypes.Name((MigrateType)mt))))));

    private IEnumerable<Measurement<long>> PcpPages() =>
        Zones().SelectMany(c => c.PcpPagesByCpu.Select((n, cpu) => new Measurement<long>(n, Zone(c), new("cpu", cpu))));

    private IEnumerable<Measurement<long>> Fallbacks() =>
        Zones().SelectMany(c => new[]
        {
            new Measurement<long>(c.Event(VmEvent.FallbackClaim), Zone(c), new("kind", "claim")),
            new Measurement<long>(c.Event(VmEvent.FallbackSteal), Zone(c), new("kind", "steal")),
        });

    private IEnumerable<Measurement<long>> PerLock(Func<LockStats, long> read) =>
        Zones().SelectMany(c => Locks(c).Select((l, i) => new Measurement<long>(read(l), Zone(c), new("lock", LockNames[i]))));

    private IEnumerable<Measurement<double>> PerLockSeconds(Func<LockStats, long> readNs) =>
        Zones().SelectMany(c => Locks(c).Select((l, i) => new Measurement<double>(readNs(l) / 1e9, Zone(c), new("lock", LockNames[i]))));

    private static LockStats[] Locks(ZoneCounters c) => [c.ZoneLock, c.PcpLocks, c.RefLock];
}
