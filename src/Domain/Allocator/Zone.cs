using System.Diagnostics;
using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

/// <summary>
/// struct zone: a contiguous range of page frames with its buddy free lists, per-CPU page sets,
/// watermarks, counters and lock. Page state is kept as struct-of-arrays indexed by
/// <c>pfn - StartPfn</c>: refcount, list links (4 bytes each), flags and order (1 byte each),
/// 14 bytes per page where the kernel's struct page takes 64 (15 once the zone has had an LRU page: Zone.Lru.cs). Buddy arithmetic is done on absolute
/// pfns, so blocks are naturally aligned machine-wide as in the kernel.
/// <para>Locks: <see cref="ZoneLock"/> (zone->lock) guards the free lists and PageBuddy state;
/// each pcp has its own lock, taken outside the zone lock; <see cref="RefLock"/> serialises
/// refcount transitions on allocated pages (the kernel uses per-page atomics; see docs/model.md).</para>
/// </summary>
public sealed partial class Zone
{
    // Struct-of-arrays page state (the simulation's mem_map).
    internal readonly int[] RefCount;
    internal readonly int[] Next;
    internal readonly int[] Prev;
    internal readonly byte[] Flags;
    internal readonly byte[] Order;

    private readonly byte[] _pageblockMt;
    private readonly long _firstPageblock;
    private readonly IntrusiveLists<PerPageLinks> _freeLists;

    // The MAX_PAGE_ORDER lists keep their links one slot per 2^10-page block, not per page: booting
    // a zone puts every page in such blocks, and per-page links would touch every 4 KiB of both
    // link arrays (2 GiB on a 1 TiB zone) to write one entry in 1024. Where a list_head lives is
    // layout, not behaviour: the lists are the kernel's.
    private readonly IntrusiveLists<PerAlignedBlockLinks> _maxOrderLists;
    private readonly long[] _nrFree = new long[NrPageOrders];
    private readonly long[] _nrFreeByType = new long[NrPageOrders * MigrateTypes.Count];
    private readonly long[] _events = new long[VmEvents.Count];
    private readonly PerCpuPages[] _pcp;
    private long _freePages;

    // zone->nr_free_highatomic: free pages on the MIGRATE_HIGHATOMIC lists (the watermark check
    // leaves them out for requests without reserves); zone->nr_reserved_highatomic: pages in
    // pageblocks reserved for high-order atomic allocations. Both under zone->lock.
    private long _freeHighatomicPages;
    private long _reservedHighatomic;

    /// <summary>
    /// ZONE_BELOW_HIGH: set by get_page_from_freelist() when the zone fails its high watermark,
    /// cleared by a pcp drain that brings it back above; while set, the pcp lists shrink instead of
    /// growing. Read and written without a lock, as the kernel's zone->flags bit is.
    /// </summary>
    internal bool BelowHigh
    {
        get => Volatile.Read(ref _belowHigh);
        set => Volatile.Write(ref _belowHigh, value);
    }

    private bool _belowHigh;

    // Blocks allocated from and freed to the buddy by order (under zone->lock); the pcps keep their own.
    private readonly long[] _allocsByOrder = new long[NrPageOrders];
    private readonly long[] _freesByOrder = new long[NrPageOrders];

    // The machine's kmem tracepoints: each emission site reads _trace.Enabled first (one volatile read).
    private readonly Tracepoints _trace;
    private long _hwPoisonLeaked;

    // HWPoison pages still in use (changed under RefLock): while there are none, no range can hold one.
    private long _hwPoisonInUse;

    /// <summary>
    /// Builds the zone and, with <paramref name="boot"/>, boots it (<see cref="Boot"/>). Without, the
    /// zone is empty (no free page, every pageblock Unmovable, every list empty) for a snapshot or a
    /// fork to fill: its state is then not consistent until they have.
    /// </summary>
    internal Zone(int index, int nodeId, ZoneType type, string key, long startPfn, int pages, ZoneTuning tuning, int cpus, Tracepoints tracepoints, bool boot = true)
    {
        _trace = tracepoints;
        Index = index;
        NodeId = nodeId;
        Type = type;
        Key = key;
        StartPfn = startPfn;
        SpannedPages = pages;
        BaseWatermarks = tuning.Watermarks;
        _lowmemReserve = tuning.LowmemReserve;

        // List links are always written before they are read (a page's links are set when it joins
        // a list), so they skip zeroing: on a 1 TiB zone that is 2 GiB of memory never touched.
        RefCount = new int[pages];
        Next = GC.AllocateUninitializedArray<int>(pages);
        Prev = GC.AllocateUninitializedArray<int>(pages);
        Flags = new byte[pages];
        Order = new byte[pages];
        _firstPageblock = startPfn >> PageblockOrder;
        var lastPageblock = (startPfn + pages - 1) >> PageblockOrder;
        _pageblockMt = new byte[lastPageblock - _firstPageblock + 1];

        _freeLists = IntrusiveLists.PerPage(Next, Prev, NrPageOrders * MigrateTypes.Count);
        _maxOrderLists = IntrusiveLists.ForAlignedBlocks(pages, MaxPageOrder, (int)(startPfn & ((1 << MaxPageOrder) - 1)), NrPageOrders * MigrateTypes.Count);
        _lru = IntrusiveLists.PerPage(Next, Prev, LruLists.Count);
        ZoneLock = new InstrumentedLock($"{key} zone->lock");
        RefLock = new InstrumentedLock($"{key} refcount");
        _pcp = new PerCpuPages[cpus];
        for (var cpu = 0; cpu < cpus; cpu++)
        {
            _pcp[cpu] = new PerCpuPages(cpu, Next, Prev, tuning.Batch, tuning.HighMin, tuning.HighMax, key);
        }
        if (boot)
        {
            Boot();
        }
    }

    /// <summary>The zone's place in <see cref="Machine.Zones"/>, which indexes its zonelists.</summary>
    internal int Index { get; }

    public int NodeId { get; }

    public ZoneType Type { get; }

    /// <summary>The name the API uses: the zone name, with "@node" for nodes other than 0.</summary>
    public string Key { get; }

    public long StartPfn { get; }

    public int SpannedPages { get; }

    public long EndPfn => StartPfn + SpannedPages;

    /// <summary>managed_pages: every page, as PageAlloc reserves none (see docs/model.md).</summary>
    public long ManagedPages => SpannedPages;

    /// <summary>
    /// wmark_pages(): zone->_watermark[] plus zone->watermark_boost, the marks every check uses
    /// (Zone.Boost.cs). Without a boost, <see cref="BaseWatermarks"/> itself.
    /// </summary>
    public Watermarks Watermarks => Volatile.Read(ref _boostedWatermarks) ?? BaseWatermarks;

    /// <summary>zone->_watermark[]: set at boot, and again by <see cref="SetWatermarksAndPcp"/> when min_free_kbytes changes.</summary>
    public Watermarks BaseWatermarks { get; private set; }

    /// <summary>
    /// What setup_per_zone_wmarks() does to one zone when min_free_kbytes changes: the new watermarks
    /// under zone->lock (__setup_per_zone_wmarks()), then zone_pcp_update(zone, 0): every cpu's batch,
    /// high_min and high_max from the new low watermark. lowmem_reserve[] does not depend on
    /// min_free_kbytes and stays. Callers keep page calls off the machine meanwhile (as for a fork).
    /// </summary>
    internal void SetWatermarksAndPcp(ZoneTuning tuning)
    {
        using (ZoneLock.Enter())
        {
            BaseWatermarks = tuning.Watermarks;
            SetWatermarkBoost(_watermarkBoost);
        }
        foreach (var pcp in _pcp)
        {
            using var _ = pcp.Lock.Enter();
            pcp.SetHighAndBatch(tuning.Batch, tuning.HighMin, tuning.HighMax);
        }
    }

    /// <summary>lowmem_reserve[], indexed by the highest zone type a request may use.</summary>
    public IReadOnlyList<long> LowmemReserve => _lowmemReserve;

    // The array itself for the watermark check, which runs on every allocation (no interface call).
    private readonly long[] _lowmemReserve;

    public InstrumentedLock ZoneLock { get; }

    public InstrumentedLock RefLock { get; }

    /// <summary>NR_FREE_PAGES: pages in the buddy free lists (pcp pages excluded, as in the kernel).</summary>
    public long NrFreePages => Volatile.Read(ref _freePages);

    public bool Contains(long pfn) => pfn >= StartPfn && pfn < EndPfn;

    internal PerCpuPages Pcp(int cpu) => _pcp[cpu];

    /// <summary>
    /// memblock_free_all() for this zone: free every page as the largest aligned blocks, at the
    /// tail of the lists (FPI_TO_TAIL), with every pageblock Movable (memmap_init_range()).
    /// </summary>
    private void Boot()
    {
        Array.Fill(_pageblockMt, (byte)MigrateType.Movable);
        using var _ = ZoneLock.Enter();
        var pfn = StartPfn;
        var end = EndPfn;
        while (pfn < end)
        {
            // __free_pages_memory(): order = min(MAX_PAGE_ORDER, __ffs(start)), shrunk to fit.
            var order = AlignmentOrder(pfn);
            while (pfn + (1L << order) > end)
            {
                order--;
            }
            // __free_pages_core() -> split_large_buddy() frees an order-10 block as two order-9 halves
            // that merge straight back, every pageblock being Movable at boot; freeing it whole ends in
            // the same lists and counters without writing the order-9 links of every block.
            FreeOnePageCore(IndexOf(pfn), order, MigrateType.Movable, toTail: true);
            _freesByOrder[order]++; // pgfree is derived from it
            pfn += 1L << order;
        }
    }

    internal int IndexOf(long pfn) => (int)(pfn - StartPfn);

    internal long PfnOf(int idx) => StartPfn + idx;

    internal MigrateType PageblockMigrateType(int idx) =>
        (MigrateType)_pageblockMt[((StartPfn + idx) >> PageblockOrder) - _firstPageblock];

    /// <summary>set_pageblock_migratetype() for every pageblock a block of this order covers.</summary>
    private void ChangePageblockRange(int idx, int order, MigrateType mt)
    {
        var first = ((StartPfn + idx) >> PageblockOrder) - _firstPageblock;
        var count = order >= PageblockOrder ? 1 << (order - PageblockOrder) : 1;
        _pageblockMt.AsSpan((int)first, count).Fill((byte)mt);
    }

    [Conditional("DEBUG")]
    private void AssertZoneLocked() => Debug.Assert(ZoneLock.IsHeldByCurrentThread, "zone->lock must be held");
}

/// <summary>zone->_watermark[]: min, low, high and promo, in pages.</summary>
public sealed record Watermarks(long Min, long Low, long High, long Promo)
{
    internal long Get(AllocFlags mark) => (mark & AllocFlags.WmarkMask) switch
    {
        AllocFlags.WmarkMin => Min,
        AllocFlags.WmarkLow => Low,
        _ => High,
    };
}

/// <summary>What the machine computes for a zone before building it.</summary>
internal sealed record ZoneTuning(Watermarks Watermarks, long[] LowmemReserve, int Batch, int HighMin, int HighMax);
