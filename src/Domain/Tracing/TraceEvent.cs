using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Tracing;

/// <summary>
/// The tracepoints PageAlloc emits: the kernel's kmem events (include/trace/events/kmem.h), its
/// vmscan events of kswapd and direct reclaim (include/trace/events/vmscan.h), and one of its own, in
/// its own "pagealloc" subsystem so nobody mistakes it for a kernel event. New events go at the end:
/// the numbers are filter bits.
/// </summary>
public enum TraceEventType : byte
{
    /// <summary>kmem:mm_page_alloc, at the end of __alloc_pages(), for a failure too (pfn 0).</summary>
    MmPageAlloc,

    /// <summary>kmem:mm_page_alloc_zone_locked, in __rmqueue_smallest() under zone->lock.</summary>
    MmPageAllocZoneLocked,

    /// <summary>kmem:mm_page_free, in free_pages_prepare(): once per call, so per page in a range free.</summary>
    MmPageFree,

    /// <summary>
    /// kmem:mm_page_free_batched, in free_unref_folios(): reclaim frees the folios it took this way
    /// (after mm_page_free of each, from free_pages_prepare()).
    /// </summary>
    MmPageFreeBatched,

    /// <summary>kmem:mm_page_pcpu_drain, in free_pcppages_bulk(), per block returned to the buddy.</summary>
    MmPagePcpuDrain,

    /// <summary>kmem:mm_page_alloc_extfrag, when __rmqueue_claim() or __rmqueue_steal() falls back to another migratetype.</summary>
    MmPageAllocExtfrag,

    /// <summary>pagealloc:range_free_chunk, PageAlloc's own: one chunk a range or bulk free hands to the allocator.</summary>
    RangeFreeChunk,

    /// <summary>vmscan:mm_vmscan_wakeup_kswapd, in wakeup_kswapd() when it wakes a sleeping kswapd.</summary>
    MmVmscanWakeupKswapd,

    /// <summary>vmscan:mm_vmscan_kswapd_wake, as kswapd starts balance_pgdat() for the order it was woken for.</summary>
    MmVmscanKswapdWake,

    /// <summary>vmscan:mm_vmscan_kswapd_sleep, as kswapd goes to sleep with its node balanced.</summary>
    MmVmscanKswapdSleep,

    /// <summary>vmscan:mm_vmscan_direct_reclaim_begin, in try_to_free_pages().</summary>
    MmVmscanDirectReclaimBegin,

    /// <summary>vmscan:mm_vmscan_direct_reclaim_end, in try_to_free_pages(), with the pages reclaimed.</summary>
    MmVmscanDirectReclaimEnd,

    /// <summary>compaction:mm_compaction_begin, as compact_zone() starts its scanners.</summary>
    MmCompactionBegin,

    /// <summary>compaction:mm_compaction_end, as compact_zone() returns, with its status.</summary>
    MmCompactionEnd,

    /// <summary>compaction:mm_compaction_migratepages, after each migrate_pages() of compact_zone().</summary>
    MmCompactionMigratepages,

    /// <summary>compaction:mm_compaction_wakeup_kcompactd, in wakeup_kcompactd() when it wakes kcompactd.</summary>
    MmCompactionWakeupKcompactd,

    /// <summary>compaction:mm_compaction_kcompactd_wake, as kcompactd starts kcompactd_do_work().</summary>
    MmCompactionKcompactdWake,
}

/// <summary>
/// One event as the tracepoint records it (TP_STRUCT__entry): the fields every event has (time,
/// cpu, zone, pfn, order, migratetype) and the ones only some have. A struct, copied into each
/// listener's buffer; nothing is allocated per event.
/// </summary>
/// <param name="Timestamp">Stopwatch ticks since the tracepoints were created.</param>
/// <param name="Zone">The zone's index in Machine.Zones.</param>
/// <param name="Flag">percpu_refill (zone_locked), change_ownership (extfrag).</param>
/// <param name="FallbackOrder">extfrag: the order of the block taken.</param>
/// <param name="FallbackMigrateType">extfrag: the migratetype of the block taken.</param>
/// <param name="Gfp">mm_page_alloc: the gfp mask.</param>
/// <param name="Strategy">range_free_chunk: the free strategy.</param>
/// <param name="Node">vmscan events: the node (nid); the zone is the highest zone they name (zid).</param>
/// <param name="NrPages">mm_vmscan_direct_reclaim_end: nr_reclaimed; mm_compaction_migratepages: nr_migrated.</param>
/// <param name="NrFailed">mm_compaction_migratepages: nr_failed.</param>
/// <param name="MigratePfn">mm_compaction_begin/end: the migration scanner's pfn (Pfn is zone_start).</param>
/// <param name="FreePfn">mm_compaction_begin/end: the free scanner's pfn.</param>
/// <param name="ZoneEnd">mm_compaction_begin/end: zone_end.</param>
/// <param name="Status">mm_compaction_end: the compact_result (Flag: mode sync); the kcompactd events: the highest zone type (classzone_idx).</param>
public readonly record struct TraceEvent(
    TraceEventType Type,
    long Timestamp,
    int Cpu,
    int Zone,
    long Pfn,
    int Order,
    int MigrateType,
    bool Flag = false,
    int FallbackOrder = 0,
    int FallbackMigrateType = 0,
    GfpFlags Gfp = 0,
    FreeStrategy Strategy = default,
    int Node = 0,
    long NrPages = 0,
    long NrFailed = 0,
    long MigratePfn = 0,
    long FreePfn = 0,
    long ZoneEnd = 0,
    int Status = 0);
