using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Contracts;

/// <summary>alloc_pages(gfp, order) on a cpu; gfp defaults to GFP_KERNEL, cpu to the serving thread's.</summary>
public sealed record AllocPagesRequest(
    [property: Required, Range(0, PageAllocConstants.MaxPageOrder), Description("Block order, 0..10 (MAX_PAGE_ORDER).")] int? Order,
    [property: Description("GFP mask in the kernel's spelling, e.g. \"GFP_KERNEL|__GFP_COMP\". Default GFP_KERNEL.")] string? Gfp = null,
    [property: Range(0, MachineConfig.MaxCpus - 1), Description("Simulated cpu whose pcp is used.")] int? Cpu = null) : IJsonBody<AllocPagesRequest>;

/// <summary>A pfn and the order of the block that starts there.</summary>
public sealed record BlockRequest(
    [property: Required, Range(0, long.MaxValue), Description("Page frame number (machine-wide).")] long? Pfn,
    [property: Required, Range(0, PageAllocConstants.MaxPageOrder), Description("Block order.")] int? Order,
    [property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null) : IJsonBody<BlockRequest>;

/// <summary>free_contig_range(pfn, nr_pages) with a strategy (default chunked).</summary>
public sealed record FreeContigRangeRequest(
    [property: Required, Range(0, long.MaxValue)] long? Pfn,
    [property: Required, Range(1, int.MaxValue), Description("Number of order-0 pages.")] long? NrPages,
    FreeStrategy? Strategy = null,
    [property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null) : IJsonBody<FreeContigRangeRequest>;

/// <summary>free_pages_bulk(pfns): order-0 pages, contiguous runs freed together as vfree does.</summary>
public sealed record FreePagesBulkRequest(
    [property: Required, MinLength(1), MaxLength(1 << 20)] long[]? Pfns,
    FreeStrategy? Strategy = null,
    [property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null) : IJsonBody<FreePagesBulkRequest>;

/// <summary>One page (get_page, put_page, hwpoison).</summary>
public sealed record PageRequest(
    [property: Required, Range(0, long.MaxValue)] long? Pfn,
    [property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null) : IJsonBody<PageRequest>;

/// <summary>drain_pages for one cpu, or every cpu when cpu is left out.</summary>
public sealed record DrainPagesRequest([property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null);

/// <summary>page_alloc_high_order_test: iterations of alloc(order) + split + free_contig_range.</summary>
public sealed record HighOrderTestRequest(
    [property: Required, Range(1, HighOrderTestRequest.MaxIterations), Description("Loop iterations (the seed ran 100000).")] int? Iterations,
    [property: Range(1, PageAllocConstants.MaxPageOrder), Description("Block order; 9 (HPAGE_PMD_ORDER) by default.")] int? Order = null,
    [property: Description("One strategy, or all three when left out.")] FreeStrategy? Strategy = null,
    [property: Description("Zone of the private machine; Normal by default.")] string? Zone = null,
    [property: Range(1, HighOrderTestRequest.MaxRounds), Description("Timed rounds per strategy, after a warm-up; the median round is reported, with every round's time (5 by default).")] int? Rounds = null)
{
    /// <summary>The bound: 100000 per-page iterations take a few seconds.</summary>
    public const int MaxIterations = 100_000;

    /// <summary>Rounds per strategy: with <see cref="MaxIterations"/>, a maximal run stays within Limits:TestTimeoutSeconds' default.</summary>
    public const int MaxRounds = 9;

    public const int DefaultRounds = 5;
}

/// <summary>The synthetic fragmenter's target for a zone: its free pages, and the unusable_index at one order.</summary>
public sealed record FragmentRequest(
    [property: Required, Range(0, long.MaxValue), Description("Free pages the zone ends with.")] long? FreePages,
    [property: Required, Range(1, PageAllocConstants.MaxPageOrder), Description("The order whose unusable_index is set (9 for THP).")] int? Order,
    [property: Required, Range(0.0, 1.0), Description("unusable_index at that order: the share of free memory in smaller blocks.")] double? UnusableIndex,
    [property: Description("Seed of the layout and of the small blocks' sizes (default 1).")] int? Seed = null,
    [property: Description("The used pages of Movable pageblocks are page cache on the LRU (reclaim may free them, compaction move them), "
        + "as on a machine that has run for a while; those of other pageblocks stay pinned. Default false: every used page is pinned.")] bool? PageCache = null);

/// <summary>
/// New values for fail_page_alloc's debugfs files; members left out keep their value. Checked as a
/// whole: one bad value changes nothing.
/// </summary>
public sealed record FailPageAllocRequest(
    [property: Range(0, 100), Description("probability: percent of eligible allocations to fail; 0 turns injection off.")] int? Probability = null,
    [property: Range(1, long.MaxValue), Description("interval: only every interval-th eligible allocation may fail.")] long? Interval = null,
    [property: Range(-1, int.MaxValue), Description("times: how many failures may still be injected; -1 for no limit.")] int? Times = null,
    [property: Range(0, int.MaxValue), Description("space: pages that may be allocated before failures start.")] int? Space = null,
    [property: Range(0, 2), Description("verbose: 0 silent, 1 a log line per failure, 2 with the call.")] int? Verbose = null,
    [property: Range(0, PageAllocConstants.MaxPageOrder), Description("min-order: allocations below this order are never failed.")] int? MinOrder = null,
    [property: Description("ignore-gfp-wait: leave allocations that may sleep (__GFP_DIRECT_RECLAIM) alone.")] bool? IgnoreGfpWait = null,
    [property: Description("ignore-gfp-highmem: leave __GFP_HIGHMEM allocations alone.")] bool? IgnoreGfpHighmem = null);

/// <summary>alloc_contig_range(pfn, pfn + nr_pages, gfp): a given range of pages, as order-0 pages.</summary>
public sealed record AllocContigRangeRequest(
    [property: Required, Range(0, long.MaxValue), Description("First pfn of the range.")] long? Pfn,
    [property: Required, Range(1, (double)int.MaxValue), Description("Number of pages.")] long? NrPages,
    [property: Description("GFP mask in the kernel's spelling; default GFP_KERNEL. __GFP_COMP is refused.")] string? Gfp = null) : IJsonBody<AllocContigRangeRequest>;

/// <summary>alloc_contig_pages(nr_pages, gfp): any free range of nr_pages at a multiple of nr_pages.</summary>
public sealed record AllocContigPagesRequest(
    [property: Required, Range(1, (double)int.MaxValue), Description("Number of pages.")] long? NrPages,
    [property: Description("GFP mask in the kernel's spelling; default GFP_KERNEL. __GFP_COMP is refused.")] string? Gfp = null) : IJsonBody<AllocContigPagesRequest>;
