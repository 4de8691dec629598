namespace PageAlloc.Domain.Model;

/// <summary>How free_contig_range() frees a range of order-0 pages.</summary>
public enum FreeStrategy
{
    /// <summary>The loop before the 2026 patch: __free_page() on each page, so each lands on the order-0 pcp list.</summary>
    PerPage,

    /// <summary>The seed's v1 patch: runs freed as aligned chunks of order min(ilog2(left), alignment, pageblock_order).</summary>
    Chunked,

    /// <summary>As merged for v7.2: chunks capped at MAX_PAGE_ORDER, ending at memory-section boundaries.</summary>
    Upstream,
}

public static class FreeStrategies
{
    /// <summary>The wire names: per-page, chunked, upstream.</summary>
    public static string Name(FreeStrategy s) => s switch
    {
        FreeStrategy.PerPage => "per-page",
        FreeStrategy.Chunked => "chunked",
        _ => "upstream",
    };

    public static bool TryParse(string? text, out FreeStrategy strategy)
    {
        foreach (var s in Enum.GetValues<FreeStrategy>())
        {
            if (string.Equals(Name(s), text, StringComparison.OrdinalIgnoreCase))
            {
                strategy = s;
                return true;
            }
        }
        strategy = FreeStrategy.Chunked;
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
