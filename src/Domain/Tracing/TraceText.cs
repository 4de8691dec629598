using System.Globalization;
using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Tracing;

/// <summary>
/// Events as text: each kmem event's TP_printk format (include/trace/events/kmem.h, the v6.x
/// "pfn=0x%lx" spelling), and whole lines in `perf script`'s default layout, so tools that read a
/// real kernel trace read PageAlloc's. page=%p has no struct page to point at here; PageAlloc prints
/// the pfn in its place, as perf script does for a tracepoint that records only the pfn.
/// </summary>
public static class TraceText
{
    /// <summary>The name of the event, as perf and ftrace spell it (without the subsystem).</summary>
    public static string Name(TraceEventType type) => type switch
    {
        TraceEventType.MmPageAlloc => "mm_page_alloc",
        TraceEventType.MmPageAllocZoneLocked => "mm_page_alloc_zone_locked",
        TraceEventType.MmPageFree => "mm_page_free",
        TraceEventType.MmPageFreeBatched => "mm_page_free_batched",
        TraceEventType.MmPagePcpuDrain => "mm_page_pcpu_drain",
        TraceEventType.MmPageAllocExtfrag => "mm_page_alloc_extfrag",
        TraceEventType.RangeFreeChunk => "range_free_chunk",
        TraceEventType.MmVmscanWakeupKswapd => "mm_vmscan_wakeup_kswapd",
        TraceEventType.MmVmscanKswapdWake => "mm_vmscan_kswapd_wake",
        TraceEventType.MmVmscanKswapdSleep => "mm_vmscan_kswapd_sleep",
        TraceEventType.MmVmscanDirectReclaimBegin => "mm_vmscan_direct_reclaim_begin",
        TraceEventType.MmVmscanDirectReclaimEnd => "mm_vmscan_direct_reclaim_end",
        TraceEventType.MmCompactionBegin => "mm_compaction_begin",
        TraceEventType.MmCompactionEnd => "mm_compaction_end",
        TraceEventType.MmCompactionMigratepages => "mm_compaction_migratepages",
        TraceEventType.MmCompactionWakeupKcompactd => "mm_compaction_wakeup_kcompactd",
        TraceEventType.MmCompactionKcompactdWake => "mm_compaction_kcompactd_wake",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "every event has a name"),
    };

    /// <summary>"kmem", "vmscan" and "compaction" for the kernel's events, "pagealloc" for PageAlloc's own.</summary>
    public static string Subsystem(TraceEventType type) => type switch
    {
        TraceEventType.RangeFreeChunk => "pagealloc",
        >= TraceEventType.MmCompactionBegin => "compaction",
        >= TraceEventType.MmVmscanWakeupKswapd => "vmscan",
        _ => "kmem",
    };

    /// <summary>Whether the event is one of vmscan's, which name a node and no page.</summary>
    public static bool IsVmscan(TraceEventType type) => type is >= TraceEventType.MmVmscanWakeupKswapd and < TraceEventType.MmCompactionBegin;

    /// <summary>Whether the event is one of compaction's, which name no page.</summary>
    public static bool IsCompaction(TraceEventType type) => type >= TraceEventType.MmCompactionBegin;

    /// <summary>COMPACTION_STATUS (include/trace/events/mmflags.h): the compact_result names, by value.</summary>
    public static string CompactionStatus(int status) => status switch
    {
        0 => "not_suitable_zone",
        1 => "skipped",
        2 => "deferred",
        3 => "no_suitable_page",
        4 => "continue",
        5 => "complete",
        6 => "partial_skipped",
        7 => "contended",
        _ => "success",
    };

    /// <summary>Every event by its name (without the subsystem).</summary>
    public static IReadOnlyDictionary<string, TraceEventType> ByName { get; } =
        Enum.GetValues<TraceEventType>().ToDictionary(Name, StringComparer.Ordinal);

    /// <summary>The event's fields as its TP_printk prints them.</summary>
    public static string Fields(in TraceEvent e)
    {
        var c = CultureInfo.InvariantCulture;
        var page = e.Type == TraceEventType.MmPageAlloc && e.Pfn == 0 ? "0000000000000000" : string.Create(c, $"0x{e.Pfn:x}");
        return e.Type switch
        {
            TraceEventType.MmPageAlloc => string.Create(c,
                $"page={page} pfn=0x{e.Pfn:x} order={e.Order} migratetype={e.MigrateType} gfp_flags={Gfp.Format(e.Gfp)}"),
            TraceEventType.MmPageAllocZoneLocked => string.Create(c,
                $"page={page} pfn=0x{e.Pfn:x} order={e.Order} migratetype={e.MigrateType} percpu_refill={(e.Flag ? 1 : 0)}"),
            TraceEventType.MmPageFree or TraceEventType.MmPageFreeBatched => string.Create(c,
                $"page={page} pfn=0x{e.Pfn:x} order={e.Order}"),
            TraceEventType.MmPagePcpuDrain => string.Create(c,
                $"page={page} pfn=0x{e.Pfn:x} order={e.Order} migratetype={e.MigrateType}"),
            TraceEventType.MmPageAllocExtfrag => string.Create(c,
                $"page={page} pfn=0x{e.Pfn:x} alloc_order={e.Order} fallback_order={e.FallbackOrder} pageblock_order={PageAllocConstants.PageblockOrder} alloc_migratetype={e.MigrateType} fallback_migratetype={e.FallbackMigrateType} fragmenting={(e.FallbackOrder < PageAllocConstants.PageblockOrder ? 1 : 0)} change_ownership={(e.Flag ? 1 : 0)}"),
            TraceEventType.RangeFreeChunk => string.Create(c,
                $"pfn=0x{e.Pfn:x} order={e.Order} strategy={FreeStrategies.Of(e.Strategy).Name}"),
            // include/trace/events/vmscan.h (v6.12-v6.18): zid is recorded but not printed.
            TraceEventType.MmVmscanWakeupKswapd => string.Create(c, $"nid={e.Node} order={e.Order} gfp_flags={Gfp.Format(e.Gfp)}"),
            TraceEventType.MmVmscanKswapdWake => string.Create(c, $"nid={e.Node} order={e.Order}"),
            TraceEventType.MmVmscanKswapdSleep => string.Create(c, $"nid={e.Node}"),
            TraceEventType.MmVmscanDirectReclaimBegin => string.Create(c, $"order={e.Order} gfp_flags={Gfp.Format(e.Gfp)}"),
            TraceEventType.MmVmscanDirectReclaimEnd => string.Create(c, $"nr_reclaimed={e.NrPages}"),
            // include/trace/events/compaction.h (v6.12-v6.18).
            TraceEventType.MmCompactionBegin => string.Create(c,
                $"zone_start=0x{e.Pfn:x} migrate_pfn=0x{e.MigratePfn:x} free_pfn=0x{e.FreePfn:x} zone_end=0x{e.ZoneEnd:x}, mode={(e.Flag ? "sync" : "async")}"),
            TraceEventType.MmCompactionEnd => string.Create(c,
                $"zone_start=0x{e.Pfn:x} migrate_pfn=0x{e.MigratePfn:x} free_pfn=0x{e.FreePfn:x} zone_end=0x{e.ZoneEnd:x}, mode={(e.Flag ? "sync" : "async")} status={CompactionStatus(e.Status)}"),
            TraceEventType.MmCompactionMigratepages => string.Create(c, $"nr_migrated={e.NrPages} nr_failed={e.NrFailed}"),
            TraceEventType.MmCompactionWakeupKcompactd or TraceEventType.MmCompactionKcompactdWake => string.Create(c,
                $"nid={e.Node} order={e.Order} classzone_idx={ZoneTypes.Name((ZoneType)e.Status),-8}"),
            _ => throw new ArgumentOutOfRangeException(nameof(e), e.Type, "every event has a format"),
        };
    }

    /// <summary>
    /// One line as `perf script` prints it: comm (16 wide), pid, [cpu], seconds.microseconds, then the
    /// subsystem:event right-aligned in 30, and the fields.
    /// </summary>
    public static string PerfScriptLine(in TraceEvent e, string comm, int pid)
    {
        // Integer arithmetic: seconds and microseconds exactly as the ticks say, no float rounding.
        var frequency = System.Diagnostics.Stopwatch.Frequency;
        var whole = e.Timestamp / frequency;
        var micros = e.Timestamp % frequency * 1_000_000 / frequency;
        var name = Subsystem(e.Type) + ":" + Name(e.Type);
        return string.Create(CultureInfo.InvariantCulture,
            $"{comm,16} {pid} [{e.Cpu:D3}] {whole,5}.{micros:D6}: {name,30}: {Fields(in e)}");
    }

    /// <summary>What ftrace prints where its ring buffer dropped events.</summary>
    public static string Lost(long count) => string.Create(CultureInfo.InvariantCulture, $"[LOST {count} EVENTS]");
}
