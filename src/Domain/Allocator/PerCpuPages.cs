using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Allocator;

/// <summary>
/// struct per_cpu_pages: one simulated CPU's cache of free blocks for one zone, with its own lock
/// (pcp->lock, taken outside zone->lock). Lists are indexed as order_to_pindex() does.
/// </summary>
internal sealed class PerCpuPages
{
    /// <summary>NR_LOWORDER_PCP_LISTS: MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1).</summary>
    public const int NrLowOrderPcpLists = MigrateTypes.PcpTypes * (PageAllocConstants.PageAllocCostlyOrder + 1);

    /// <summary>NR_PCP_THP: one THP list for movable, one shared by unmovable and reclaimable.</summary>
    public const int NrPcpThp = 2;

    public const int NrPcpLists = NrLowOrderPcpLists + NrPcpThp;

    public PerCpuPages(int cpu, int[] next, int[] prev, int batch, int highMin, int highMax, string zoneName)
    {
        Cpu = cpu;
        Lists = IntrusiveLists.PerPage(next, prev, NrPcpLists);
        Batch = batch;
        HighMin = highMin;
        HighMax = highMax;
        High = highMin;
        Lock = new InstrumentedLock($"{zoneName} pcp cpu{cpu}");
    }

    public int Cpu { get; }

    public InstrumentedLock Lock { get; }

    public IntrusiveLists<PerPageLinks> Lists { get; }

    /// <summary>pcp->count: pages (not blocks) on all lists.</summary>
    public int Count;

    /// <summary>
    /// pcp->high: starts at high_min and is tuned between high_min and high_max as the kernel does
    /// since v6.7: raised by nr_pcp_alloc() when a refill finds the zone above its high watermark,
    /// raised by nr_pcp_high() when frees fill the list and lowered when the zone is below high or a
    /// run of high-order frees is drained, and decayed by an eighth per vmstat interval (decay_pcp_high()).
    /// </summary>
    public int High;

    /// <summary>pcp->alloc_factor: doubles the order-0 refill per refill without a free in between, up to CONFIG_PCP_BATCH_SCALE_MAX.</summary>
    public int AllocFactor;

    /// <summary>PCPF_PREV_FREE_HIGH_ORDER: the last free to this pcp was of order 1..3.</summary>
    public bool PrevFreeHighOrder;

    public int HighMin { get; private set; }

    public int HighMax { get; private set; }

    public int Batch { get; private set; }

    /// <summary>
    /// __zone_set_pageset_high_and_batch() for this cpu: the new batch, high_min and high_max; pcp->high
    /// stays and is clamped to them on the next refill or free, as in the kernel. Under pcp->lock.
    /// </summary>
    internal void SetHighAndBatch(int batch, int highMin, int highMax)
    {
        Batch = batch;
        HighMin = highMin;
        HighMax = highMax;
    }

    /// <summary>pcp->free_count: recent frees, raised on free and halved on allocation.</summary>
    public int FreeCount;

    /// <summary>Blocks on each list, kept as blocks come and go so statistics never walk the lists.</summary>
    public readonly int[] ListBlocks = new int[NrPcpLists];

    /// <summary>list_add() of a block to the head of a pcp list (a free).</summary>
    public void AddHead(int pindex, int idx)
    {
        Lists.AddHead(pindex, idx);
        ListBlocks[pindex]++;
        Count += 1 << PindexToOrder(pindex);
    }

    /// <summary>list_add_tail() of a block (a refill from the buddy).</summary>
    public void AddTail(int pindex, int idx)
    {
        Lists.AddTail(pindex, idx);
        ListBlocks[pindex]++;
        Count += 1 << PindexToOrder(pindex);
    }

    /// <summary>list_del() of a block (an allocation or a drain).</summary>
    public void Remove(int pindex, int idx)
    {
        Lists.Remove(pindex, idx);
        ListBlocks[pindex]--;
        Count -= 1 << PindexToOrder(pindex);
    }

    /// <summary>Event counters kept under this pcp's lock (the kernel's per-cpu vm_event_states).</summary>
    public readonly long[] Events = new long[VmEvents.Count];

    /// <summary>Blocks allocated from and freed to this pcp, by order (changed under its lock).</summary>
    public readonly long[] AllocsByOrder = new long[PageAllocConstants.NrPageOrders];

    /// <inheritdoc cref="AllocsByOrder"/>
    public readonly long[] FreesByOrder = new long[PageAllocConstants.NrPageOrders];

    /// <summary>
    /// Takes over another pcp's state (a fork): its lists' heads and tails (the links live in the
    /// zone's Next and Prev, which the zone copies), count, tuning, counters and lock statistics.
    /// batch, high_min and high_max are the zone's tuning, the same on both.
    /// </summary>
    public void CopyFrom(PerCpuPages source)
    {
        Lists.CopyFrom(source.Lists, links: false);
        Count = source.Count;
        High = source.High;
        AllocFactor = source.AllocFactor;
        PrevFreeHighOrder = source.PrevFreeHighOrder;
        FreeCount = source.FreeCount;
        source.ListBlocks.CopyTo(ListBlocks, 0);
        source.Events.CopyTo(Events, 0);
        source.AllocsByOrder.CopyTo(AllocsByOrder, 0);
        source.FreesByOrder.CopyTo(FreesByOrder, 0);
        Lock.CopyCountersFrom(source.Lock);
    }

    /// <summary>order_to_pindex().</summary>
    public static int OrderToPindex(MigrateType mt, int order)
    {
        if (order > PageAllocConstants.PageAllocCostlyOrder)
        {
            return NrLowOrderPcpLists + (mt == MigrateType.Movable ? 1 : 0);
        }
        return (MigrateTypes.PcpTypes * order) + (int)mt;
    }

    /// <summary>pindex_to_order().</summary>
    public static int PindexToOrder(int pindex) =>
        pindex < NrLowOrderPcpLists ? pindex / MigrateTypes.PcpTypes : PageAllocConstants.HpagePmdOrder;

    /// <summary>
    /// nr_pcp_alloc(): blocks to take from the buddy on a refill. high first grows by the refill
    /// while the zone is above its high watermark; an order-0 refill is batch &lt;&lt; alloc_factor pages,
    /// at most what keeps the list under high, and alloc_factor grows while refills come back to
    /// back; higher orders take batch &gt;&gt; order blocks (at least 2).
    /// </summary>
    public int NrPcpAlloc(int order, bool zoneBelowHigh)
    {
        var baseBatch = Batch;
        var high = High = ClampT(High, HighMin, HighMax);
        if (high < baseBatch)
        {
            return 1; // pcp disabled, or the boot pageset
        }
        var batch = order != 0 ? baseBatch : baseBatch << AllocFactor;
        if (HighMin != HighMax && !zoneBelowHigh)
        {
            high = High = Math.Min(high + batch, HighMax);
        }
        if (order == 0)
        {
            var maxNrAlloc = Math.Max(high - Count - baseBatch, baseBatch);
            if (batch <= maxNrAlloc && AllocFactor < PageAllocConstants.PcpBatchScaleMax)
            {
                AllocFactor++; // the next refill without a free in between takes twice as much
            }
            batch = Math.Min(batch, maxNrAlloc);
        }
        if (batch > 1)
        {
            batch = Math.Max(batch >> order, 2);
        }
        return batch;
    }

    /// <summary>
    /// nr_pcp_high(): the count at which a free drains. A run of high-order frees (free_high) drains
    /// now and lowers high; below the zone's high watermark high shrinks by the recent frees;
    /// otherwise a full list raises high enough to hold the recent frees. While kswapd reclaims
    /// the zone (ZONE_RECLAIM_ACTIVE), high shrinks by the recent frees and at most batch &lt;&lt; 2
    /// pages stay on the list, so that what reclaim frees reaches the buddy and its watermarks.
    /// </summary>
    public int NrPcpHigh(bool zoneBelowHigh, bool freeHigh, bool reclaimActive = false)
    {
        var batch = Batch;
        var high = High = ClampT(High, HighMin, HighMax);
        if (high == 0)
        {
            return 0;
        }
        if (freeHigh)
        {
            High = Math.Max(high - (batch << PageAllocConstants.PcpBatchScaleMax), HighMin);
            return 0;
        }
        if (reclaimActive)
        {
            High = Math.Max(high - Math.Max(FreeCount, batch), HighMin);
            return Math.Min(batch << 2, High);
        }
        if (HighMin == HighMax)
        {
            return high;
        }
        if (zoneBelowHigh)
        {
            High = Math.Max(high - Math.Max(FreeCount, batch), HighMin);
            high = Math.Max(Count, HighMin);
        }
        else if (Count >= high)
        {
            var needHigh = FreeCount + batch;
            if (High < needHigh)
            {
                High = ClampT(needHigh, HighMin, HighMax);
            }
        }
        return high;
    }

    /// <summary>
    /// nr_pcp_free(): pages to return on a drain. A run of high-order frees returns up to
    /// batch &lt;&lt; CONFIG_PCP_BATCH_SCALE_MAX; otherwise the recent frees, at least batch, leaving at least batch.
    /// </summary>
    public int NrPcpFree(int high, bool freeHigh)
    {
        if (freeHigh)
        {
            return Math.Min(Count, Batch << PageAllocConstants.PcpBatchScaleMax);
        }
        if (high < Batch)
        {
            return 1;
        }
        return ClampT(FreeCount, Batch, high - Batch);
    }

    /// <summary>The kernel's clamp(): min(max(value, lo), hi), which never throws when lo &gt; hi.</summary>
    private static int ClampT(int value, int lo, int hi) => Math.Min(Math.Max(value, lo), hi);
}
