using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// The per-CPU page lists of a zone (the lists themselves are PerCpuPages): taking a block from
// them (rmqueue_pcplist(), refilled by rmqueue_bulk()), freeing a prepared block (refcount already
// zero, flags cleared) to them for pcp orders or to the buddy otherwise, and the drain paths.
public sealed partial class Zone
{
    /// <summary>
    /// rmqueue_pcplist() + __rmqueue_pcplist(): take the first block of the list for (mt, order);
    /// when the list is empty refill it with nr_pcp_alloc() blocks from the buddy (rmqueue_bulk()),
    /// except for an ALLOC_HIGHATOMIC request, which gets nothing from an empty list and falls
    /// through to rmqueue_buddy() (v7.1+, "mm/page_alloc: don't increase highatomic reserve after
    /// pcp alloc", b480cbb07102). A block already on the list is taken whatever the flags.
    /// </summary>
    private int RmqueuePcplist(int order, MigrateType mt, AllocFlags alloc, PerCpuPages pcp)
    {
        if (!pcp.Lock.TryEnter())
        {
            return IntrusiveLists.Nil; // pcp_spin_trylock() failed: fall through to the buddy
        }
        try
        {
            pcp.FreeCount >>= 1;
            var list = PerCpuPages.OrderToPindex(mt, order);
            if (pcp.Lists.IsEmpty(list))
            {
                var batch = pcp.NrPcpAlloc(order, BelowHigh); // before the test, as in the kernel: it clamps and may raise high
                if ((alloc & AllocFlags.HighAtomic) != 0)
                {
                    // A refill would build no highatomic reserve: send the request to
                    // rmqueue_buddy(), which tries the reserve first and grows it.
                    return IntrusiveLists.Nil;
                }
                var alloced = RmqueueBulk(order, batch, pcp, list, mt, alloc);
                if (alloced == 0)
                {
                    return IntrusiveLists.Nil;
                }
            }
            var idx = pcp.Lists.First(list);
            pcp.Remove(list, idx);
            Flags[idx] = (byte)PageFlags.None;
            pcp.AllocsByOrder[order]++; // pgalloc and alloc_from_pcp are derived from it (ZoneEvents.AddBlockCounts)
            return idx;
        }
        finally
        {
            pcp.Lock.Exit();
        }
    }

    /// <summary>rmqueue_bulk(): move up to count blocks from the buddy to the tail of a pcp list.</summary>
    private int RmqueueBulk(int order, int count, PerCpuPages pcp, int list, MigrateType mt, AllocFlags alloc)
    {
        using var _ = ZoneLock.Enter();
        var i = 0;
        for (; i < count; i++)
        {
            var idx = RmqueueCore(order, mt, alloc);
            if (idx < 0)
            {
                break;
            }
            Flags[idx] = (byte)PageFlags.Pcp;
            Order[idx] = (byte)order;
            pcp.AddTail(list, idx); // pcp->count += alloced << order, block by block
        }
        if (i > 0)
        {
            _events[(int)VmEvent.PcpRefill]++;
            _events[(int)VmEvent.PcpRefillPages] += (long)i << order;
        }
        return i;
    }

    /// <summary>
    /// __free_frozen_pages(): blocks of pcp orders go to the pcp list of their pageblock's type
    /// (HighAtomic on the Movable list; Isolate straight to the buddy), others to free_one_page()
    /// (__free_pages_ok()). A contended pcp trylock also falls back to the buddy.
    /// </summary>
    internal void FreeFrozenPages(int idx, int order, int cpu)
    {
        if (!PcpAllowedOrder(order))
        {
            FreeOnePage(idx, order);
            return;
        }
        var mt = PageblockMigrateType(idx);
        if ((int)mt >= MigrateTypes.PcpTypes)
        {
            if (mt == MigrateType.Isolate)
            {
                FreeOnePage(idx, order);
                return;
            }
            mt = MigrateType.Movable;
        }
        var pcp = _pcp[cpu];
        if (!pcp.Lock.TryEnter())
        {
            FreeOnePage(idx, order);
            return;
        }
        try
        {
            FreeFrozenPageCommit(pcp, idx, mt, order);
        }
        finally
        {
            pcp.Lock.Exit();
        }
    }

    /// <summary>
    /// free_frozen_page_commit(): add at the head of the pcp list; alloc_factor halves; a run of
    /// order 1..3 frees (free_high: free_count past batch + high_min / 2 with the previous free
    /// also high-order) drains now; otherwise when pcp->count reaches nr_pcp_high(), nr_pcp_free()
    /// pages go back to the buddy in batch-sized free_pcppages_bulk() calls (the current kernel's
    /// batched freeing), each starting its round-robin again at the list just freed to, until that
    /// many are freed or the pcp is empty; a zone back above its high watermark clears
    /// ZONE_BELOW_HIGH. The kernel drops and retakes the pcp lock between calls, and gives up when
    /// the task has moved to another cpu meanwhile; a simulated call stays on its cpu, so the lock
    /// is kept. PCPF_FREE_HIGH_BATCH (set from the cpu's cache size) is never set here.
    /// </summary>
    private void FreeFrozenPageCommit(PerCpuPages pcp, int idx, MigrateType mt, int order)
    {
        pcp.AllocFactor >>= 1;
        pcp.FreesByOrder[order]++; // pgfree is derived from it
        var pindex = PerCpuPages.OrderToPindex(mt, order);
        Flags[idx] = (byte)PageFlags.Pcp;
        Order[idx] = (byte)order;
        pcp.AddHead(pindex, idx);
        var batch = pcp.Batch;
        var freeHigh = false;
        if (order is > 0 and <= PageAllocCostlyOrder)
        {
            freeHigh = pcp.FreeCount >= batch + (pcp.HighMin / 2) && pcp.PrevFreeHighOrder;
            pcp.PrevFreeHighOrder = true;
        }
        else
        {
            pcp.PrevFreeHighOrder = false;
        }
        if (pcp.FreeCount < (batch << PcpBatchScaleMax))
        {
            pcp.FreeCount += 1 << order;
        }
        var high = pcp.NrPcpHigh(BelowHigh, freeHigh, ReclaimActive);
        if (pcp.Count < high)
        {
            return;
        }
        var toFree = pcp.NrPcpFree(high, freeHigh);
        while (true)
        {
            var batched = Math.Min(toFree, batch);
            FreePcppagesBulk(pcp, batched, pindex);
            toFree -= batched;
            if (toFree <= 0 || pcp.Count == 0)
            {
                break;
            }
        }
        if (BelowHigh && ZoneWatermarkOk(0, Watermarks.High, ZoneType.Movable, AllocFlags.WmarkMin))
        {
            BelowHigh = false;
        }
    }

    /// <summary>
    /// decay_pcp_high(), run by the vmstat worker once per interval for each cpu: high falls by an
    /// eighth (never below high_min, nor below count - (batch &lt;&lt; CONFIG_PCP_BATCH_SCALE_MAX)), and
    /// what the list holds above high goes back to the buddy in batch-sized calls. Returns the
    /// pages drained.
    /// </summary>
    internal int DecayPcpHigh(int cpu)
    {
        if (_trace.Enabled)
        {
            Tracepoints.OnCpu(cpu); // the vmstat worker runs on the cpu it decays: its drains are that cpu's events
        }
        var pcp = _pcp[cpu];
        using var _ = pcp.Lock.Enter();
        if (pcp.High > pcp.HighMin)
        {
            pcp.High = Math.Max(Math.Max(pcp.Count - (pcp.Batch << PcpBatchScaleMax), pcp.High - (pcp.High >> 3)), pcp.HighMin);
        }
        var drained = 0;
        var toDrain = pcp.Count - pcp.High;
        while (toDrain > 0)
        {
            var batched = Math.Min(toDrain, pcp.Batch);
            drained += FreePcppagesBulk(pcp, batched, 0);
            toDrain -= batched;
        }
        return drained;
    }

    /// <summary>
    /// free_pcppages_bulk(): under zone->lock, take blocks from the tails of the pcp lists
    /// round-robin (starting at pindex) and give them to __free_one_page() with the migratetype
    /// re-read from their pageblock. Returns the pages returned.
    /// </summary>
    private int FreePcppagesBulk(PerCpuPages pcp, int count, int pindex)
    {
        count = Math.Min(count, pcp.Count);
        if (count <= 0)
        {
            return 0;
        }
        var drained = 0;
        pindex--;
        using var _ = ZoneLock.Enter();
        while (count > 0)
        {
            do
            {
                if (++pindex > PerCpuPages.NrPcpLists - 1)
                {
                    pindex = 0;
                }
            }
            while (pcp.Lists.IsEmpty(pindex));

            var order = PerCpuPages.PindexToOrder(pindex);
            var nrPages = 1 << order;
            do
            {
                var idx = pcp.Lists.Last(pindex);
                var mt = PageblockMigrateType(idx);
                pcp.Remove(pindex, idx);
                if (_trace.Enabled)
                {
                    _trace.Emit(TraceEventType.MmPagePcpuDrain, Index, PfnOf(idx), order, (int)mt);
                }
                count -= nrPages;
                drained += nrPages;
                Flags[idx] = (byte)PageFlags.None;
                FreeOnePageCore(idx, order, mt, toTail: false);
            }
            while (count > 0 && !pcp.Lists.IsEmpty(pindex));
        }
        _events[(int)VmEvent.PcpDrain]++;
        _events[(int)VmEvent.PcpDrainPages] += drained;
        return drained;
    }

    /// <summary>
    /// drain_pages_zone(): return every page on one CPU's pcp lists to the buddy, in chunks of at
    /// most batch &lt;&lt; CONFIG_PCP_BATCH_SCALE_MAX pages, the pcp lock taken again for each chunk.
    /// </summary>
    internal int DrainPcp(int cpu)
    {
        if (_trace.Enabled)
        {
            Tracepoints.OnCpu(cpu);
        }
        var pcp = _pcp[cpu];
        var drained = 0;
        while (true)
        {
            using var _ = pcp.Lock.Enter();
            if (pcp.Count == 0)
            {
                return drained;
            }
            drained += FreePcppagesBulk(pcp, Math.Min(pcp.Count, pcp.Batch << PcpBatchScaleMax), 0);
        }
    }

    /// <summary>drain_pages() for one CPU, or drain_all_pages() when cpu is null. Returns pages drained.</summary>
    public PageResult<long> DrainPages(int? cpu)
    {
        if (cpu is { } c)
        {
            if (CheckCpu(c) is { } error)
            {
                return error;
            }
            return DrainPcp(c);
        }
        long total = 0;
        for (var i = 0; i < _pcp.Length; i++)
        {
            total += DrainPcp(i);
        }
        return total;
    }
}
