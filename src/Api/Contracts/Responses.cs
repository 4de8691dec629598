using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Api.Contracts;

// The rule for response types: a domain record whose shape is already the wire's goes out as it is
// (PageState, Watermarks, PcpStats, LockStats, HighOrderTestResult); a contract type exists only
// where the wire differs from the domain: a subset (ZoneSummary, ZoneDetail), names for indices
// (ZoneStatsResponse keys counters by name), or a shape the domain has no reason to keep.

public sealed record ZoneSummary(string Name, int Node, long StartPfn, long SpannedPages, long ManagedPages, long FreePages, long PcpPages)
{
    public static ZoneSummary From(ZoneStats s) =>
        new(s.Zone, s.Node, s.StartPfn, s.SpannedPages, s.ManagedPages, s.FreePages, s.PcpPages);
}

public sealed record ZoneDetail(
    string Name, int Node, long StartPfn, long SpannedPages, long ManagedPages, long FreePages, long PcpPages,
    Watermarks Watermarks, long[] LowmemReserve, PcpStats[] Pcp);

public sealed record AllocPagesResponse(long Pfn, int Order, string Zone, MigrateType Migratetype, bool Compound, bool FromPcp, string Gfp);

public sealed record SplitPageResponse(long Pfn, int Order, int Pages);

public sealed record FreePagesResponse(long Pfn, int Order, bool Freed, int Refcount);

public sealed record RefcountResponse(long Pfn, int Refcount, bool Freed);

public sealed record ChunkResponse(long Pfn, int Order);

/// <summary>
/// A range free's outcome: pages freed, still referenced and leaked (HWPoison); the chunks handed to the
/// allocator counted by order 0..10; with listChunks=true the chunks themselves, in the order freed, up
/// to the service's limit (chunksUnlisted counts the rest).
/// </summary>
public sealed record RangeFreeResponse(
    long Freed,
    long NotFreed,
    long Leaked,
    long[] ChunksByOrder,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] ChunkResponse[]? Chunks,
    long ChunksUnlisted,
    FreeStrategy Strategy);

public sealed record DrainPagesResponse(long Drained);

/// <summary>A zone's counters: buddyinfo per order, pagetypeinfo per migratetype, pcp per cpu, events, locks.</summary>
public sealed record ZoneStatsResponse(
    string Zone,
    int Node,
    long ManagedPages,
    long FreePages,
    long PcpPages,
    long AllocatedPages,
    long HwPoisonLeakedPages,
    long[] Buddyinfo,
    Dictionary<string, long[]> Pagetypeinfo,
    Dictionary<string, long> PageblocksByType,
    long[] PcpBlocksByOrder,
    PcpStats[] Pcp,
    Dictionary<string, long> Vmstat,
    LockStats[] Locks,
    [property: System.ComponentModel.Description("extfrag_index per order 0..10 (mm/vmstat.c __fragmentation_index()): -1 when a block of the order is free, else 0 (would fail for lack of memory) to 1 (would fail for fragmentation).")]
    double[] ExtfragIndex,
    [property: System.ComponentModel.Description("unusable_index per order 0..10 (mm/vmstat.c unusable_free_index()): the share of free memory in blocks too small for the order.")]
    double[] UnusableIndex,
    [property: System.ComponentModel.Description("Pages on each LRU list (nr_zone_inactive_anon .. nr_zone_unevictable): the system's page cache and anon pages, which reclaim may free. Part of allocatedPages.")]
    Dictionary<string, long> Lru)
{
    public static ZoneStatsResponse From(ZoneStats s) => new(
        s.Zone, s.Node, s.ManagedPages, s.FreePages, s.PcpPages, s.AllocatedPages, s.HwPoisonLeakedPages,
        s.NrFree,
        Enum.GetValues<MigrateType>().ToDictionary(MigrateTypes.Name, mt => s.NrFreeByType[(int)mt]),
        Enum.GetValues<MigrateType>().ToDictionary(MigrateTypes.Name, mt => s.PageblocksByType[(int)mt]),
        s.PcpBlocksByOrder,
        s.Pcp,
        Enum.GetValues<VmEvent>().ToDictionary(VmEvents.Name, e => s.Event(e)),
        s.Locks,
        Fragmentation.ExtfragIndices(s.NrFree),
        Fragmentation.UnusableIndices(s.NrFree),
        Enum.GetValues<LruList>().ToDictionary(LruLists.Name, s.Lru));
}

public sealed record MachineTotals(long ManagedPages, long FreePages, long PcpPages, long AllocatedPages, long HwPoisonLeakedPages)
{
    public static MachineTotals From(IReadOnlyList<ZoneStats> zones) => new(
        zones.Sum(z => z.ManagedPages), zones.Sum(z => z.FreePages), zones.Sum(z => z.PcpPages),
        zones.Sum(z => z.AllocatedPages), zones.Sum(z => z.HwPoisonLeakedPages));
}

public sealed record MachineStatsResponse(int Cpus, long MinFreeKbytes, MachineTotals Totals, ZoneStatsResponse[] Zones,
    [property: System.ComponentModel.Description("Reclaim's vm events, as /proc/vmstat names them (allocstall_*, pgscan_*, pgsteal_*, pageoutrun, drop_pagecache, ...).")]
    Dictionary<string, long> Reclaim);

/// <summary>What POST .../page_cache did: pages read into the page cache, pages not read, and what reclaim freed meanwhile.</summary>
public sealed record PageCacheReadResponse(long Read, long NotRead, long ReclaimedByKswapd, long ReclaimedDirectly, Dictionary<string, long> Lru);

/// <summary>What POST .../compact_memory did: free blocks per order (all zones) before and after, pages migrated, pfns each scanner visited.</summary>
public sealed record CompactMemoryResponse(long[] FreeBlocksBefore, long[] FreeBlocksAfter, long Migrated, long MigrateScanned, long FreeScanned);

/// <summary>What POST .../drop_caches did: the value written and the page-cache pages freed.</summary>
public sealed record DropCachesResponse(int Value, long FreedPages);

public sealed record HighOrderTestResponse(int Iterations, int Order, string Zone, PageAlloc.Domain.Testing.HighOrderTestResult[] Results);

/// <summary>
/// A zone's pageblocks for a picture, grouped into cells of <see cref="PageblocksPerCell"/> pageblocks
/// (1 unless the zone has more pageblocks than cells asked for). Per cell: the migratetype most of its
/// pageblocks have (an index into <see cref="Migratetypes"/>), and its pages free in the buddy, on pcp
/// lists, and HWPoison; the rest of its <see cref="CellPages"/> pages are in use.
/// </summary>
public sealed record PageblockMapResponse(
    string Zone,
    long FirstPfn,
    int Pageblocks,
    int PageblocksPerCell,
    int CellPages,
    string[] Migratetypes,
    int[] Migratetype,
    int[] FreePages,
    int[] PcpPages,
    int[] HwPoisonPages)
{
    public static PageblockMapResponse From(PageblockMap map, int maxCells)
    {
        var perCell = (map.Count + maxCells - 1) / maxCells;
        var cells = (map.Count + perCell - 1) / perCell;
        var types = new int[cells];
        var free = new int[cells];
        var pcp = new int[cells];
        var poison = new int[cells];
        Span<int> votes = stackalloc int[MigrateTypes.Count];
        for (var c = 0; c < cells; c++)
        {
            votes.Clear();
            for (var b = c * perCell; b < Math.Min(map.Count, (c + 1) * perCell); b++)
            {
                votes[map.MigrateTypes[b]]++;
                free[c] += map.FreePages[b];
                pcp[c] += map.PcpPages[b];
                poison[c] += map.HwPoisonPages[b];
            }
            var best = 0;
            for (var mt = 1; mt < votes.Length; mt++)
            {
                best = votes[mt] > votes[best] ? mt : best;
            }
            types[c] = best;
        }
        return new PageblockMapResponse(map.Zone, map.FirstPfn, map.Count, perCell, perCell * PageAllocConstants.PageblockNrPages,
            [.. Enum.GetValues<MigrateType>().Select(MigrateTypes.Name)], types, free, pcp, poison);
    }
}

/// <summary>fail_page_alloc's debugfs files, and the failures it has injected since the machine booted.</summary>
public sealed record FailPageAllocResponse(
    int Probability, long Interval, int Times, int Space, int Verbose, int MinOrder, bool IgnoreGfpWait, bool IgnoreGfpHighmem, long Injected)
{
    public static FailPageAllocResponse From(PageAlloc.Domain.FaultInjection.FailPageAlloc f) =>
        new(f.Probability, f.Interval, f.Times, f.Space, f.Verbose, f.MinOrder, f.IgnoreGfpWait, f.IgnoreGfpHighmem, f.Injected);
}

/// <summary>A contiguous range taken by alloc_contig_range() or alloc_contig_pages(): order-0 pages with one reference each.</summary>
public sealed record ContigRangeResponse(long Pfn, long NrPages, string Zone);

/// <summary>What POST /vmstat_update did: the intervals run and the pcp pages decay_pcp_high() returned to the buddy.</summary>
public sealed record VmstatUpdateResponse(int Intervals, long DrainedPages);

/// <summary>A live allocation: its head pfn, order, the head's references, and whether it is a compound page.</summary>
public sealed record AllocationResponse(long Pfn, int Order, int Refcount, bool Compound);

/// <summary>A page of the zone's live allocations (the caller's own, with API keys), and where the next page starts.</summary>
public sealed record AllocationsResponse(AllocationResponse[] Allocations,
    [property: System.ComponentModel.Description("The pfn to ask from for the next page (?from=); null when the zone has no more.")] long? Next);

/// <summary>What POST .../free_allocations freed: blocks and pages, and the references it dropped.</summary>
public sealed record FreeAllocationsResponse(long Blocks, long Pages, long References);
