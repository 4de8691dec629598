using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Model;

/// <summary>How free_contig_range() frees a range of order-0 pages (rows of <see cref="FreeStrategies"/>).</summary>
public enum FreeStrategy
{
    /// <summary>The loop before the 2026 patch: __free_page() on each page, so each lands on the order-0 pcp list.</summary>
    PerPage,

    /// <summary>The seed's v1 patch: runs freed as aligned chunks of order min(ilog2(left), alignment, pageblock_order).</summary>
    Chunked,

    /// <summary>As merged for v7.2: chunks capped at MAX_PAGE_ORDER, ending at memory-section boundaries.</summary>
    Upstream,
}

/// <summary>
/// One free strategy, all that the allocator and the wire need to know of it: its name, whether it
/// frees page by page, the largest chunk it frees, and whether its runs end at memory sections.
/// </summary>
public sealed record FreeStrategyInfo(FreeStrategy Strategy, string Name, bool PageByPage, int ChunkCapOrder, bool RunsEndAtSections);

/// <summary>
/// The table of free strategies: one row each. A new strategy is a row here plus its algorithm,
/// if it needs one the columns cannot describe; an enum value without a row fails at start.
/// </summary>
public static class FreeStrategies
{
    private static readonly FreeStrategyInfo[] Table =
    [
        new(FreeStrategy.PerPage, "per-page", PageByPage: true, ChunkCapOrder: 0, RunsEndAtSections: false),
        new(FreeStrategy.Chunked, "chunked", PageByPage: false, ChunkCapOrder: PageblockOrder, RunsEndAtSections: false),
        new(FreeStrategy.Upstream, "upstream", PageByPage: false, ChunkCapOrder: MaxPageOrder, RunsEndAtSections: true),
    ];

    static FreeStrategies()
    {
        var values = Enum.GetValues<FreeStrategy>();
        for (var i = 0; i < values.Length; i++)
        {
            if ((int)values[i] != i || i >= Table.Length || Table[i].Strategy != values[i])
            {
                throw new InvalidOperationException($"FreeStrategies has no row {i} for {values[i]}: every strategy needs one, in enum order.");
            }
        }
    }

    /// <summary>Every strategy, in enum order.</summary>
    public static IReadOnlyList<FreeStrategyInfo> All => Table;

    /// <summary>The row of a strategy; a value outside the enum is an error, never a default.</summary>
    public static FreeStrategyInfo Of(FreeStrategy strategy) =>
        (uint)strategy < (uint)Table.Length
            ? Table[(int)strategy]
            : throw new ArgumentOutOfRangeException(nameof(strategy), strategy, "not a free strategy");

    /// <summary>The wire name: per-page, chunked, upstream.</summary>
    public static string Name(FreeStrategy strategy) => Of(strategy).Name;

    public static bool TryParse(string? text, out FreeStrategy strategy)
    {
        foreach (var row in Table)
        {
            if (string.Equals(row.Name, text, StringComparison.OrdinalIgnoreCase))
            {
                strategy = row.Strategy;
                return true;
            }
        }
        strategy = default;
        return false;
    }
}

/// <summary>One block handed to the pcp or the buddy by a free.</summary>
public readonly record struct FreedChunk(long Pfn, int Order);

/// <summary>
/// What a range free did: pages freed, pages whose refcount stayed above zero (the v1 return
/// value), and HWPoison pages deliberately leaked.
/// </summary>
public readonly record struct ContigFreeSummary(long Freed, long NotFreed, long Leaked)
{
    public static ContigFreeSummary operator +(ContigFreeSummary a, ContigFreeSummary b) =>
        new(a.Freed + b.Freed, a.NotFreed + b.NotFreed, a.Leaked + b.Leaked);
}
