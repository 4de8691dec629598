using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Snapshots;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// One zone in a machine snapshot (docs/snapshot-format.md): its ZONE, PBLK, PAGE, FREE and PCPS
// sections. Every field of struct zone, struct per_cpu_pages and the page arrays that the
// simulation keeps is here, except the list links: Next and Prev (and the MAX_PAGE_ORDER lists'
// link slots) are never written, since a page that is on no list has links nobody wrote (the arrays
// are allocated uninitialised) and writing them could leak another object's stale memory. Each list
// is written instead as its block heads from head to tail, and read back by adding them at the tail
// in that order, which rebuilds the same links for every member. A head is written as its distance
// from the one before (the first from index 0): lists are often runs of neighbours, whose equal
// distances zlib compresses several times better and faster than the indices themselves.
public sealed partial class Zone
{
    /// <summary>
    /// Writes the zone's sections. The machine is quiescent (the caller keeps page calls off it), so
    /// nothing is locked: taking a lock would change the lock statistics being written. A list
    /// whose walk disagrees with its counter (a machine the invariant checker would fault) stops the
    /// write rather than writing a snapshot no reader accepts.
    /// </summary>
    internal void WriteSnapshot(SnapshotWriter w, bool withLru)
    {
        w.Section(SnapshotSection.Zone);
        w.WriteInt32(NodeId);
        w.WriteByte((byte)Type);
        w.WriteInt64(StartPfn);
        w.WriteInt32(SpannedPages);
        w.WriteInt32(_pcp.Length);
        // zone->_watermark[] (the boost is in the LRUS section) and lowmem_reserve[].
        w.WriteInt64(BaseWatermarks.Min);
        w.WriteInt64(BaseWatermarks.Low);
        w.WriteInt64(BaseWatermarks.High);
        w.WriteInt64(BaseWatermarks.Promo);
        w.WriteInt64s(_lowmemReserve);
        w.WriteBool(_belowHigh); // zone->flags: ZONE_BELOW_HIGH, the only zone flag modelled
        w.WriteInt64(_freePages); // vm_stat[NR_FREE_PAGES]
        w.WriteInt64(_freeHighatomicPages); // zone->nr_free_highatomic
        w.WriteInt64(_reservedHighatomic); // zone->nr_reserved_highatomic
        w.WriteInt64(_hwPoisonLeaked);
        w.WriteInt64(_hwPoisonInUse);
        w.WriteInt64s(_nrFree); // free_area[order].nr_free
        w.WriteInt64s(_nrFreeByType); // nr_free per order and migratetype (pagetypeinfo)
        w.WriteInt64s(_events);
        w.WriteInt64s(_allocsByOrder);
        w.WriteInt64s(_freesByOrder);
        WriteLock(w, ZoneLock.Counters());
        WriteLock(w, RefLock.Counters());

        w.Section(SnapshotSection.Pageblocks); // the pageblock bitmap's migratetype bits
        w.WriteInt32(_pageblockMt.Length);
        w.WriteBytes(_pageblockMt);

        w.Section(SnapshotSection.Pages); // struct page: _refcount, flags, the buddy/page_owner order, memcg_data
        w.WriteInt32s(RefCount);
        w.WriteBytes(Flags);
        w.WriteBytes(Order);
        if (_memcgIds is { } ids)
        {
            w.WriteUInt16s(ids);
        }

        w.Section(SnapshotSection.FreeLists);
        for (var order = 0; order < NrPageOrders; order++)
        {
            for (var mt = 0; mt < MigrateTypes.Count; mt++)
            {
                var list = FreeListId(order, (MigrateType)mt);
                var count = (int)_nrFreeByType[list];
                w.WriteInt32(count);
                var written = 0;
                var previous = 0;
                for (var idx = FreeListFirst(order, list); idx != IntrusiveLists.Nil; idx = FreeListNext(order, idx))
                {
                    if (++written > count)
                    {
                        break;
                    }
                    w.WriteInt32(idx - previous);
                    previous = idx;
                }
                if (written != count)
                {
                    throw ListDisagrees($"the order-{order} {MigrateTypes.Name((MigrateType)mt)} free list", count);
                }
            }
        }

        w.Section(SnapshotSection.Pcps);
        foreach (var pcp in _pcp)
        {
            w.WriteInt32(pcp.Count);
            w.WriteInt32(pcp.High);
            w.WriteInt32(pcp.Batch);
            w.WriteInt32(pcp.HighMin);
            w.WriteInt32(pcp.HighMax);
            w.WriteInt32(pcp.AllocFactor);
            w.WriteBool(pcp.PrevFreeHighOrder); // pcp->flags: PCPF_PREV_FREE_HIGH_ORDER (PCPF_FREE_HIGH_BATCH is never set)
            w.WriteInt32(pcp.FreeCount);
            w.WriteInt32s(pcp.ListBlocks);
            w.WriteInt64s(pcp.Events);
            w.WriteInt64s(pcp.AllocsByOrder);
            w.WriteInt64s(pcp.FreesByOrder);
            WriteLock(w, pcp.Lock.Counters());
            for (var pindex = 0; pindex < PerCpuPages.NrPcpLists; pindex++)
            {
                var count = pcp.ListBlocks[pindex];
                var written = 0;
                var previous = 0;
                for (var idx = pcp.Lists.First(pindex); idx != IntrusiveLists.Nil; idx = pcp.Lists.Next(idx))
                {
                    if (++written > count)
                    {
                        break;
                    }
                    w.WriteInt32(idx - previous);
                    previous = idx;
                }
                if (written != count)
                {
                    throw ListDisagrees($"cpu {pcp.Cpu}'s pcp list {pindex}", count);
                }
            }
        }
        if (withLru)
        {
            WriteLruSnapshot(w);
        }
    }

    private InvalidOperationException ListDisagrees(string list, int count) => new(
        $"zone {Key}: {list} does not hold the {count} blocks its counter says; the machine is inconsistent (see CheckInvariants) and is not written.");

    private static void WriteLock(SnapshotWriter w, LockCounters c)
    {
        w.WriteInt64(c.Acquisitions);
        w.WriteInt64(c.Contended);
        w.WriteInt64(c.FailedTryLocks);
        w.WriteInt64(c.WaitNs);
        w.WriteInt64(c.HoldNsSampled);
        w.WriteInt64(c.HoldSamples);
    }

    private static LockCounters ReadLock(SnapshotReader r, string what)
    {
        Span<long> c = stackalloc long[6];
        r.ReadCounters(c, $"{what}'s lock statistics");
        return new LockCounters(c[0], c[1], c[2], c[3], c[4], c[5]);
    }

    /// <summary>
    /// Fills a zone built without <see cref="Boot"/> from its sections. What could make the
    /// rebuilt lists unsafe to walk is refused here (a page index outside the zone, a page listed
    /// twice, a head not aligned to its list's order), as is any value outside what the arrays and
    /// counters can hold; whether the whole adds up is the invariant checker's to say once every
    /// zone is read. Returns the lock statistics, which the caller sets last: the checker's own
    /// locking would count in them.
    /// </summary>
    internal ZoneLocks ReadSnapshot(SnapshotReader r, int memcgs, bool hasLruSection)
    {
        r.Section(SnapshotSection.Zone);
        var node = r.ReadInt32();
        var type = r.ReadByte();
        var start = r.ReadInt64();
        var pages = r.ReadInt32();
        var cpus = r.ReadInt32();
        if (node != NodeId || type != (byte)Type || start != StartPfn || pages != SpannedPages || cpus != _pcp.Length)
        {
            throw SnapshotFailures.Inconsistent(
                $"zone section {Index} is node {node}, zone type {type}, pfn {start}, {pages} pages, {cpus} cpus, where its configuration has "
                + $"zone {Key}: node {NodeId}, zone type {(int)Type}, pfn {StartPfn}, {SpannedPages} pages, {_pcp.Length} cpus");
        }
        var watermarks = new Watermarks(r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64());
        Span<long> reserve = stackalloc long[ZoneTypes.Count];
        for (var i = 0; i < reserve.Length; i++)
        {
            reserve[i] = r.ReadInt64();
        }
        if (watermarks != BaseWatermarks || !reserve.SequenceEqual(_lowmemReserve))
        {
            // The tuning is the configuration's (MachineConfig -> min_free_kbytes -> watermarks): one
            // that differs was made by a build that tunes otherwise, or by hand.
            throw SnapshotFailures.Inconsistent(
                $"zone {Key}'s watermarks (min {watermarks.Min}, low {watermarks.Low}, high {watermarks.High}, promo {watermarks.Promo}) and protection "
                + $"({string.Join(", ", reserve.ToArray())}) are not those its configuration gives (min {BaseWatermarks.Min}, low {BaseWatermarks.Low}, "
                + $"high {BaseWatermarks.High}, promo {BaseWatermarks.Promo}; protection {string.Join(", ", _lowmemReserve)})");
        }
        _belowHigh = r.ReadBool($"zone {Key}'s ZONE_BELOW_HIGH");
        _freePages = r.ReadInt64($"zone {Key}'s NR_FREE_PAGES", 0, SpannedPages);
        _freeHighatomicPages = r.ReadInt64($"zone {Key}'s nr_free_highatomic", 0, SpannedPages);
        _reservedHighatomic = r.ReadInt64($"zone {Key}'s nr_reserved_highatomic", 0, (long)_pageblockMt.Length * PageblockNrPages);
        _hwPoisonLeaked = r.ReadInt64($"zone {Key}'s leaked HWPoison pages", 0, SpannedPages);
        _hwPoisonInUse = r.ReadInt64($"zone {Key}'s HWPoison pages in use", 0, SpannedPages);
        r.ReadCounters(_nrFree, $"zone {Key}'s nr_free");
        r.ReadCounters(_nrFreeByType, $"zone {Key}'s nr_free by migratetype");
        r.ReadCounters(_events, $"zone {Key}'s events");
        r.ReadCounters(_allocsByOrder, $"zone {Key}'s allocations by order");
        r.ReadCounters(_freesByOrder, $"zone {Key}'s frees by order");
        var zoneLock = ReadLock(r, ZoneLock.Name);
        var refLock = ReadLock(r, RefLock.Name);

        r.Section(SnapshotSection.Pageblocks);
        var pageblocks = r.ReadInt32();
        if (pageblocks != _pageblockMt.Length)
        {
            throw SnapshotFailures.Malformed($"zone {Key} has {pageblocks} pageblocks where its {SpannedPages} pages at pfn {StartPfn} make {_pageblockMt.Length}");
        }
        r.ReadBytes(_pageblockMt);
        if (_pageblockMt.AsSpan().IndexOfAnyInRange((byte)MigrateTypes.Count, byte.MaxValue) is var badBlock and >= 0)
        {
            throw SnapshotFailures.Malformed($"pageblock {badBlock} of zone {Key} has migratetype {_pageblockMt[badBlock]}, not one of 0..{MigrateTypes.Count - 1}");
        }

        r.Section(SnapshotSection.Pages);
        r.ReadInt32s(RefCount);
        r.ReadBytes(Flags);
        r.ReadBytes(Order);
        if (_memcgIds is { } ids)
        {
            r.ReadUInt16s(ids);
            if (ids.AsSpan().IndexOfAnyInRange((ushort)(memcgs + 1), ushort.MaxValue) is var badId and >= 0)
            {
                throw SnapshotFailures.Malformed($"pfn {Hex(PfnOf(badId))} is charged to memcg id {ids[badId]}; the configuration has {memcgs} memcgs");
            }
        }
        const byte knownFlags = (byte)(PageFlags.Buddy | PageFlags.Pcp | PageFlags.Head | PageFlags.Tail | PageFlags.HwPoison | PageFlags.Allocated | PageFlags.Lru); // (Isolated: only inside a call, never in a snapshot)
        if (Flags.AsSpan().IndexOfAnyInRange((byte)(knownFlags + 1), byte.MaxValue) is var badFlags and >= 0)
        {
            throw SnapshotFailures.Malformed($"pfn {Hex(PfnOf(badFlags))} has page flags 0x{Flags[badFlags]:x2}, beyond the known 0x{knownFlags:x2}");
        }
        if (Order.AsSpan().IndexOfAnyInRange((byte)(MaxPageOrder + 1), byte.MaxValue) is var badOrder and >= 0)
        {
            throw SnapshotFailures.Malformed($"pfn {Hex(PfnOf(badOrder))} has order {Order[badOrder]}, above MAX_PAGE_ORDER {MaxPageOrder}");
        }
        if (RefCount.AsSpan().IndexOfAnyInRange(int.MinValue, -1) is var badRef and >= 0)
        {
            throw SnapshotFailures.Malformed($"pfn {Hex(PfnOf(badRef))} has refcount {RefCount[badRef]}");
        }

        // Every list member once, across the free lists and every cpu's pcp lists (one union of
        // links per page, as in struct page).
        var listed = new ulong[(SpannedPages + 63) >> 6];
        long members = 0;
        r.Section(SnapshotSection.FreeLists);
        for (var order = 0; order < NrPageOrders; order++)
        {
            for (var mt = 0; mt < MigrateTypes.Count; mt++)
            {
                var list = FreeListId(order, (MigrateType)mt);
                var what = $"zone {Key}'s order-{order} {MigrateTypes.Name((MigrateType)mt)} free list";
                var count = r.ReadInt32($"the length of {what}", 0, SpannedPages - members);
                long idx = 0;
                for (var i = 0; i < count; i++)
                {
                    idx += r.ReadInt32();
                    CheckListMember(listed, idx, order, what);
                    FreeListAdd(order, list, (int)idx, toTail: true);
                }
                members += count;
            }
        }

        r.Section(SnapshotSection.Pcps);
        var pcpLocks = new LockCounters[_pcp.Length];
        foreach (var pcp in _pcp)
        {
            var what = $"zone {Key}'s pcp of cpu {pcp.Cpu}";
            pcp.Count = r.ReadInt32($"{what}'s count", 0, SpannedPages);
            // Bounds that keep the tuning's arithmetic (high + batch, batch << CONFIG_PCP_BATCH_SCALE_MAX) far from overflow.
            pcp.High = r.ReadInt32($"{what}'s high", 0, int.MaxValue >> 2);
            var batch = r.ReadInt32();
            var highMin = r.ReadInt32();
            var highMax = r.ReadInt32();
            if (batch != pcp.Batch || highMin != pcp.HighMin || highMax != pcp.HighMax)
            {
                throw SnapshotFailures.Inconsistent(
                    $"{what} has batch {batch}, high_min {highMin}, high_max {highMax}, where its configuration gives {pcp.Batch}, {pcp.HighMin}, {pcp.HighMax}");
            }
            pcp.AllocFactor = r.ReadInt32($"{what}'s alloc_factor", 0, PcpBatchScaleMax);
            pcp.PrevFreeHighOrder = r.ReadBool($"{what}'s PCPF_PREV_FREE_HIGH_ORDER");
            pcp.FreeCount = r.ReadInt32($"{what}'s free_count", 0, int.MaxValue >> 2);
            for (var pindex = 0; pindex < PerCpuPages.NrPcpLists; pindex++)
            {
                pcp.ListBlocks[pindex] = r.ReadInt32($"the length of {what}'s list {pindex}", 0, SpannedPages);
            }
            r.ReadCounters(pcp.Events, $"{what}'s events");
            r.ReadCounters(pcp.AllocsByOrder, $"{what}'s allocations by order");
            r.ReadCounters(pcp.FreesByOrder, $"{what}'s frees by order");
            pcpLocks[pcp.Cpu] = ReadLock(r, pcp.Lock.Name);
            for (var pindex = 0; pindex < PerCpuPages.NrPcpLists; pindex++)
            {
                var count = pcp.ListBlocks[pindex];
                var list = $"{what}'s list {pindex}";
                if (count > SpannedPages - members)
                {
                    throw SnapshotFailures.Inconsistent($"{list} holds {count} blocks, more than the zone's pages not yet on a list");
                }
                var order = PerCpuPages.PindexToOrder(pindex);
                long idx = 0;
                for (var i = 0; i < count; i++)
                {
                    idx += r.ReadInt32();
                    CheckListMember(listed, idx, order, list);
                    pcp.Lists.AddTail(pindex, (int)idx);
                }
                members += count;
            }
        }
        if (hasLruSection)
        {
            ReadLruSnapshot(r, listed, members);
        }
        return new ZoneLocks(zoneLock, refLock, pcpLocks);
    }

    /// <summary>A list member must be a page of the zone, on no other list, heading an aligned block of the list's order inside the zone.</summary>
    private void CheckListMember(ulong[] listed, long index, int order, string list)
    {
        if ((ulong)index >= (ulong)SpannedPages)
        {
            throw SnapshotFailures.Malformed($"{list} names page index {index}, outside the zone's {SpannedPages} pages");
        }
        var idx = (int)index;
        ref var word = ref listed[idx >> 6];
        var bit = 1UL << (idx & 63);
        if ((word & bit) != 0)
        {
            throw SnapshotFailures.Inconsistent($"{list} names pfn {Hex(PfnOf(idx))}, which is already on a list");
        }
        word |= bit;
        if ((PfnOf(idx) & ((1L << order) - 1)) != 0 || idx + (1L << order) > SpannedPages)
        {
            throw SnapshotFailures.Inconsistent($"{list} names pfn {Hex(PfnOf(idx))}, which does not head an aligned order-{order} block inside the zone");
        }
    }

    /// <summary>Sets the lock statistics a snapshot recorded (after the restored machine has been checked).</summary>
    internal void RestoreLocks(ZoneLocks locks)
    {
        ZoneLock.Restore(locks.Zone);
        RefLock.Restore(locks.Ref);
        for (var cpu = 0; cpu < _pcp.Length; cpu++)
        {
            _pcp[cpu].Lock.Restore(locks.Pcps[cpu]);
        }
    }
}

/// <summary>A zone's lock statistics as a snapshot recorded them: zone->lock, the refcount lock, each cpu's pcp->lock.</summary>
internal sealed record ZoneLocks(LockCounters Zone, LockCounters Ref, LockCounters[] Pcps);
