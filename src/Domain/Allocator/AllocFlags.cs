namespace PageAlloc.Domain.Allocator;

/// <summary>ALLOC_* flags (mm/internal.h): which watermark to check and which reserves to use.</summary>
[Flags]
internal enum AllocFlags
{
    WmarkMin = 0,
    WmarkLow = 1,
    WmarkHigh = 2,
    WmarkMask = 3,

    /// <summary>ALLOC_NO_WATERMARKS (__GFP_MEMALLOC).</summary>
    NoWatermarks = 1 << 2,

    /// <summary>ALLOC_MIN_RESERVE (__GFP_HIGH): half of the min reserve.</summary>
    MinReserve = 1 << 3,

    /// <summary>ALLOC_NON_BLOCK (cannot direct-reclaim): a further quarter, with MinReserve.</summary>
    NonBlock = 1 << 4,

    /// <summary>ALLOC_NOFRAGMENT: no fallback below pageblock_order on the first pass.</summary>
    NoFragment = 1 << 5,

    /// <summary>
    /// ALLOC_HIGHATOMIC: a non-blocking order &gt; 0 request of the slow path; may use the
    /// MIGRATE_HIGHATOMIC reserve, does not refill an empty pcp list, and reserves the pageblock
    /// it was served from when the buddy served it (rmqueue_buddy(), v7.1+).
    /// </summary>
    HighAtomic = 1 << 6,

    /// <summary>ALLOC_KSWAPD (__GFP_KSWAPD_RECLAIM): the allocation may wake kswapd, so a watermark boost it causes sets ZONE_BOOSTED_WATERMARK.</summary>
    Kswapd = 1 << 7,

    /// <summary>ALLOC_RESERVES: the flags that may dip below the min watermark (ALLOC_OOM is not modelled).</summary>
    Reserves = NonBlock | MinReserve | HighAtomic,
}
