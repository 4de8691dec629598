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

    /// <summary>pcp->high: fixed at high_min (no decay_pcp_high auto-tuning; see docs/model.md).</summary>
    public int High { get; }

    public int HighMin { get; }

    public int HighMax { get; }

    public int Batch { get; }

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

    /// <summary>nr_pcp_alloc() without alloc_factor scaling: blocks to take from the buddy on refill.</summary>
    public int NrPcpAlloc(int order)
    {
        if (High < Batch)
        {
            return 1;
        }
        var batch = Batch;
        if (batch > 1)
        {
            batch = Math.Max(batch >> order, 2);
        }
        return batch;
    }

    /// <summary>nr_pcp_free(): pages to return on a drain; keeps at least batch, frees at most high - batch.</summary>
    public int NrPcpFree()
    {
        if (High < Batch)
        {
            return 1;
        }
        return Math.Clamp(FreeCount, Batch, High - Batch);
    }
}
