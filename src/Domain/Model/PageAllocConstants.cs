namespace PageAlloc.Domain.Model;

/// <summary>
/// The allocator's compile-time constants, as on x86-64 and arm64 with 4 KiB pages
/// (include/linux/mmzone.h, include/linux/pageblock-flags.h).
/// </summary>
public static class PageAllocConstants
{
    /// <summary>MAX_PAGE_ORDER: the largest buddy is order 10 (1024 pages, 4 MiB). Inclusive.</summary>
    public const int MaxPageOrder = 10;

    /// <summary>NR_PAGE_ORDERS: size of zone->free_area[].</summary>
    public const int NrPageOrders = MaxPageOrder + 1;

    /// <summary>pageblock_order: 9 on x86-64 and arm64 with THP, so a pageblock is 512 pages (2 MiB).</summary>
    public const int PageblockOrder = 9;

    public const int PageblockNrPages = 1 << PageblockOrder;

    /// <summary>PAGE_ALLOC_COSTLY_ORDER.</summary>
    public const int PageAllocCostlyOrder = 3;

    /// <summary>PAGE_SHIFT: 4 KiB pages.</summary>
    public const int PageShift = 12;

    /// <summary>SWAP_CLUSTER_MAX: the batch reclaim isolates at a time, and direct reclaim's nr_to_reclaim.</summary>
    public const int SwapClusterMax = 32;

    /// <summary>DEF_PRIORITY: reclaim's first priority; it scans lru_size &gt;&gt; priority and raises the share as the priority drops to 0.</summary>
    public const int DefPriority = 12;

    /// <summary>MAX_RECLAIM_RETRIES: the slow path's retries of reclaim without progress.</summary>
    public const int MaxReclaimRetries = 16;

    /// <summary>HPAGE_PMD_ORDER: the THP order, the one high order kept on pcp lists.</summary>
    public const int HpagePmdOrder = 9;

    /// <summary>SECTION_SIZE_BITS - PAGE_SHIFT on x86-64: a memory section is 2^15 pages (128 MiB).</summary>
    public const int PfnSectionShift = 15;

    public const int PageSizeKb = 4;

    /// <summary>
    /// MAX_PHYSMEM_BITS - PAGE_SHIFT on x86-64 with 5-level paging (52 - 12): no physical address is
    /// 2^52 or above, so every pfn is below <see cref="MaxPfn"/> (4 PiB of memory). The widest of the
    /// kernel's architectures (arm64 with 52-bit PAs has the same bound).
    /// </summary>
    public const int MaxPfnBits = 40;

    /// <summary>One past the largest pfn the kernel can have: 2^40.</summary>
    public const long MaxPfn = 1L << MaxPfnBits;

    /// <summary>CONFIG_PCP_BATCH_SCALE_MAX default.</summary>
    public const int PcpBatchScaleMax = 5;

    /// <summary>MIN_PERCPU_PAGELIST_HIGH_FRACTION: high_max is managed/8 split across CPUs.</summary>
    public const int MinPercpuPagelistHighFraction = 8;

    /// <summary>watermark_scale_factor default (vm.watermark_scale_factor).</summary>
    public const int WatermarkScaleFactor = 10;

    /// <summary>The buddy order a pfn is naturally aligned to (__ffs(pfn)), MaxPageOrder for pfn 0.</summary>
    public static int AlignmentOrder(long pfn) =>
        pfn == 0 ? MaxPageOrder : Math.Min(MaxPageOrder, System.Numerics.BitOperations.TrailingZeroCount(pfn));

    /// <summary>ilog2(n) for n &gt; 0.</summary>
    public static int ILog2(long n) => 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)n);

    /// <summary>pcp_allowed_order(): orders 0..PAGE_ALLOC_COSTLY_ORDER and the THP order.</summary>
    public static bool PcpAllowedOrder(int order) => order <= PageAllocCostlyOrder || order == HpagePmdOrder;
}
