namespace PageAlloc.Domain.Model;

/// <summary>
/// The event counters PageAlloc keeps per zone. The first two are the kernel's own vm_event_item
/// counters (pgalloc_&lt;zone&gt; and pgfree, in pages); the rest count what the kernel only traces.
/// </summary>
public enum VmEvent
{
    /// <summary>PGALLOC: pages allocated from this zone.</summary>
    PgAlloc,

    /// <summary>PGFREE: pages freed (to the pcp or the buddy) by callers.</summary>
    PgFree,

    /// <summary>alloc_pages calls that failed on this zone (watermark or no block).</summary>
    AllocFail,

    /// <summary>allocations served from a pcp list.</summary>
    AllocFromPcp,

    /// <summary>allocations served by the buddy free lists directly.</summary>
    AllocFromBuddy,

    /// <summary>rmqueue_bulk() calls that refilled a pcp list.</summary>
    PcpRefill,

    /// <summary>pages moved from the buddy to pcp lists by rmqueue_bulk().</summary>
    PcpRefillPages,

    /// <summary>free_pcppages_bulk() calls.</summary>
    PcpDrain,

    /// <summary>pages returned from pcp lists to the buddy by free_pcppages_bulk().</summary>
    PcpDrainPages,

    /// <summary>mm_page_alloc_extfrag events where a whole pageblock was claimed.</summary>
    FallbackClaim,

    /// <summary>mm_page_alloc_extfrag events where a block was stolen without claiming.</summary>
    FallbackSteal,

    /// <summary>pages deliberately leaked because free_pages_prepare() failed (HWPoison).</summary>
    HwPoisonLeaked,
}

public static class VmEvents
{
    public const int Count = 12;

    /// <summary>snake_case names, as the counters appear in JSON and the vmstat-like views.</summary>
    public static string Name(VmEvent e) => e switch
    {
        VmEvent.PgAlloc => "pgalloc",
        VmEvent.PgFree => "pgfree",
        VmEvent.AllocFail => "alloc_fail",
        VmEvent.AllocFromPcp => "alloc_from_pcp",
        VmEvent.AllocFromBuddy => "alloc_from_buddy",
        VmEvent.PcpRefill => "pcp_refill",
        VmEvent.PcpRefillPages => "pcp_refill_pages",
        VmEvent.PcpDrain => "pcp_drain",
        VmEvent.PcpDrainPages => "pcp_drain_pages",
        VmEvent.FallbackClaim => "fallback_claim",
        VmEvent.FallbackSteal => "fallback_steal",
        _ => "hwpoison_leaked",
    };
}
