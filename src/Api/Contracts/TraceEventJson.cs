using System.Text.Json.Serialization;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Api.Contracts;

/// <summary>
/// One tracepoint event as JSON (GET /events?format=json): the fields its TP_STRUCT__entry records,
/// named as TP_printk names them, and the kernel text. Members an event does not have are left out.
/// </summary>
public sealed record TraceEventJson(
    string Event,
    string Subsystem,
    double Time,
    int Cpu,
    string Zone,
    long Pfn,
    int Order,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Migratetype,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? GfpFlags,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? PercpuRefill,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? FallbackOrder,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? FallbackMigratetype,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? ChangeOwnership,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Strategy,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Nid,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? NrReclaimed,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? NrMigrated,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? NrFailed,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? MigratePfn,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? FreePfn,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Mode,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Status,
    string Text)
{
    public static TraceEventJson From(in TraceEvent e, string zone) => new(
        TraceText.Name(e.Type),
        TraceText.Subsystem(e.Type),
        Math.Round(Tracepoints.Seconds(e.Timestamp), 6),
        e.Cpu,
        zone,
        e.Pfn,
        e.Order,
        e.Type is TraceEventType.MmPageFree or TraceEventType.MmPageFreeBatched || TraceText.IsVmscan(e.Type) || TraceText.IsCompaction(e.Type) ? null : e.MigrateType,
        e.Type is TraceEventType.MmPageAlloc or TraceEventType.MmVmscanWakeupKswapd or TraceEventType.MmVmscanDirectReclaimBegin ? Gfp.Format(e.Gfp) : null,
        e.Type == TraceEventType.MmPageAllocZoneLocked ? e.Flag : null,
        e.Type == TraceEventType.MmPageAllocExtfrag ? e.FallbackOrder : null,
        e.Type == TraceEventType.MmPageAllocExtfrag ? e.FallbackMigrateType : null,
        e.Type == TraceEventType.MmPageAllocExtfrag ? e.Flag : null,
        e.Type == TraceEventType.RangeFreeChunk ? FreeStrategies.Of(e.Strategy).Name : null,
        (TraceText.IsVmscan(e.Type) && e.Type != TraceEventType.MmVmscanDirectReclaimBegin && e.Type != TraceEventType.MmVmscanDirectReclaimEnd)
            || e.Type is TraceEventType.MmCompactionWakeupKcompactd or TraceEventType.MmCompactionKcompactdWake ? e.Node : null,
        e.Type == TraceEventType.MmVmscanDirectReclaimEnd ? e.NrPages : null,
        e.Type == TraceEventType.MmCompactionMigratepages ? e.NrPages : null,
        e.Type == TraceEventType.MmCompactionMigratepages ? e.NrFailed : null,
        Bounds(e.Type) ? e.MigratePfn : null,
        Bounds(e.Type) ? e.FreePfn : null,
        Bounds(e.Type) ? (e.Flag ? "sync" : "async") : null,
        e.Type == TraceEventType.MmCompactionEnd ? TraceText.CompactionStatus(e.Status) : null,
        TraceText.Fields(in e));

    private static bool Bounds(TraceEventType type) => type is TraceEventType.MmCompactionBegin or TraceEventType.MmCompactionEnd;
}
