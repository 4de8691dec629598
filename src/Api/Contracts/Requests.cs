using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Contracts;

/// <summary>alloc_pages(gfp, order) on a cpu; gfp defaults to GFP_KERNEL, cpu to the serving thread's.</summary>
public sealed record AllocPagesRequest(
    [property: Required, Range(0, PageAllocConstants.MaxPageOrder), Description("Block order, 0..10 (MAX_PAGE_ORDER).")] int? Order,
    [property: Description("GFP mask in the kernel's spelling, e.g. \"GFP_KERNEL|__GFP_COMP\". Default GFP_KERNEL.")] string? Gfp = null,
    [property: Range(0, MachineConfig.MaxCpus - 1), Description("Simulated cpu whose pcp is used.")] int? Cpu = null);

/// <summary>A pfn and the order of the block that starts there.</summary>
public sealed record BlockRequest(
    [property: Required, Range(0, long.MaxValue), Description("Page frame number (machine-wide).")] long? Pfn,
    [property: Required, Range(0, PageAllocConstants.MaxPageOrder), Description("Block order.")] int? Order,
    [property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null);

/// <summary>free_contig_range(pfn, nr_pages) with a strategy (default chunked).</summary>
public sealed record FreeContigRangeRequest(
    [property: Required, Range(0, long.MaxValue)] long? Pfn,
    [property: Required, Range(1, int.MaxValue), Description("Number of order-0 pages.")] long? NrPages,
    FreeStrategy? Strategy = null,
    [property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null);

/// <summary>free_pages_bulk(pfns): order-0 pages, contiguous runs freed together as vfree does.</summary>
public sealed record FreePagesBulkRequest(
    [property: Required, MinLength(1), MaxLength(1 << 20)] long[]? Pfns,
    FreeStrategy? Strategy = null,
    [property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null);

/// <summary>One page (get_page, put_page, hwpoison).</summary>
public sealed record PageRequest(
    [property: Required, Range(0, long.MaxValue)] long? Pfn,
    [property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null);

/// <summary>drain_pages for one cpu, or every cpu when cpu is left out.</summary>
public sealed record DrainPagesRequest([property: Range(0, MachineConfig.MaxCpus - 1)] int? Cpu = null);

/// <summary>page_alloc_high_order_test: iterations of alloc(order) + split + free_contig_range.</summary>
public sealed record HighOrderTestRequest(
    [property: Required, Range(1, HighOrderTestRequest.MaxIterations), Description("Loop iterations (the seed ran 100000).")] int? Iterations,
    [property: Range(1, PageAllocConstants.MaxPageOrder), Description("Block order; 9 (HPAGE_PMD_ORDER) by default.")] int? Order = null,
    [property: Description("One strategy, or all three when left out.")] FreeStrategy? Strategy = null,
    [property: Description("Zone of the private machine; Normal by default.")] string? Zone = null)
{
    /// <summary>The bound: 100000 per-page iterations take a few seconds.</summary>
    public const int MaxIterations = 100_000;
}

/// <summary>The synthetic fragmenter's target for a zone: its free pages, and the unusable_index at one order.</summary>
public sealed record FragmentRequest(
    [property: Required, Range(0, long.MaxValue), Description("Free pages the zone ends with.")] long? FreePages,
    [property: Required, Range(1, PageAllocConstants.MaxPageOrder), Description("The order whose unusable_index is set (9 for THP).")] int? Order,
    [property: Required, Range(0.0, 1.0), Description("unusable_index at that order: the share of free memory in smaller blocks.")] double? UnusableIndex,
    [property: Description("Seed of the layout and of the small blocks' sizes (default 1).")] int? Seed = null);
