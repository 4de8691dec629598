using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Reclaim;

/// <summary>
/// One node's kswapd: the pglist_data fields it and wakeup_kswapd() share (kswapd_order,
/// kswapd_highest_zoneidx, kswapd_failures) and whether it is awake.
/// <para>Time: PageAlloc's kswapd runs synchronously, on the thread of the call that woke it, once
/// that call's allocation is done (as if it ran on another cpu and finished before the next call),
/// and until it sleeps. Its nap of HZ/10 takes no time, so nothing wakes it early and
/// kswapd_low_wmark_hit_quickly stays 0 (docs/model.md). A replay is therefore deterministic.</para>
/// </summary>
internal sealed class Kswapd(int node, Zone[] zones)
{
    /// <summary>MAX_NR_ZONES: kswapd_highest_zoneidx when no wake has named a zone.</summary>
    public const int NoZone = ZoneTypes.Count;

    public int Node { get; } = node;

    /// <summary>The node's populated zones, lowest type first.</summary>
    public Zone[] Zones { get; } = zones;

    /// <summary>Guards the fields below: wakeups come from any thread.</summary>
    public Lock Lock { get; } = new();

    public int Order;
    public int HighestZoneIdx = NoZone;

    /// <summary>pgdat->kswapd_failures: balance_pgdat() runs that reclaimed nothing, reset by any reclaim that makes progress.</summary>
    public int Failures;

    /// <summary>Woken (wake_up_interruptible()) and not yet run.</summary>
    public bool Woken;

    /// <summary>Running on some thread: a wake now only merges its order and zone (the waitqueue is empty).</summary>
    public bool Running;

    /// <summary>The zone index kswapd used last, for kswapd_highest_zoneidx(pgdat, prev).</summary>
    public int PreviousZoneIdx = ZoneTypes.Count - 1;

    /// <summary>pgdat->kcompactd_max_order: the highest order a wakeup_kcompactd() asked for since kcompactd last ran.</summary>
    public int KcompactdMaxOrder;

    /// <summary>
    /// pgdat->kcompactd_highest_zoneidx: the lowest highest-zone a wake asked for; the node's highest
    /// zone (nr_zones - 1) when none. (The kernel's starts at 0 until kcompactd first runs, which
    /// makes its first run DMA's alone; PageAlloc starts where every later run leaves it.)
    /// </summary>
    public int KcompactdHighestZoneIdx = (int)zones[^1].Type;

    /// <summary>kcompactd is running on some thread (a wake meanwhile only merges its order and zone).</summary>
    public int KcompactdRunning;

    /// <summary>kcompactd was woken from an allocation and runs once that call is done.</summary>
    public int KcompactdWoken;

    /// <summary>MAX_RECLAIM_RETRIES failures: "hopeless", left to direct reclaim.</summary>
    public bool Hopeless => Volatile.Read(ref Failures) >= PageAllocConstants.MaxReclaimRetries;
}
