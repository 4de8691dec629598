using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Allocator;

// The zone's LRU lists: the system's in-use pages (page cache and anon) that reclaim may take and
// compaction may move, as the kernel's lruvec holds them (mm/swap.c, mm/vmscan.c). Clients'
// allocations are on none: they are pinned (long-term GUP pins), never reclaimed or moved.
//
// Departures (docs/model.md): the kernel keeps one lruvec per node (and memcg), whose lists mix the
// node's zones and which isolate_lru_folios() filters by sc->reclaim_idx; PageAlloc keeps one per
// zone, so the counts per zone (nr_zone_inactive_file, ...) and per node are the kernel's while the
// order across a node's zones is not. Every LRU page is an order-0 folio, clean and unmapped: page
// cache that reclaim frees at its first scan, anon pages that it never takes (no swap). The
// lruvec->lru_lock is folded into RefLock, which every refcount transition already takes: an LRU
// page changes hands only under it, so a client's free racing reclaim sees it either listed
// (refused) or frozen.
public sealed partial class Zone
{
    // The list heads; the links are the zone's Next/Prev, which an allocated page does not use
    // otherwise (struct page's lru shares the union with buddy_list and pcp_list).
    private readonly IntrusiveLists<PerPageLinks> _lru;

    // Which list each LRU page is on, plus one (0: on none). Allocated at the first LRU page, so a
    // machine that never has one pays nothing for it.
    private byte[]? _lruOf;

    // NR_ZONE_LRU_BASE + lru: pages on each list.
    private readonly long[] _lruPages = new long[LruLists.Count];

    /// <summary>
    /// ZONE_RECLAIM_ACTIVE: set by kswapd's balance_pgdat() (set_reclaim_active()) while it reclaims
    /// the zone, which keeps the pcp lists short (nr_pcp_high()). Read without a lock, as the
    /// kernel's zone->flags bit is; it is never set outside a kswapd run, so forks and snapshots,
    /// taken between calls, never see it.
    /// </summary>
    internal bool ReclaimActive
    {
        get => Volatile.Read(ref _reclaimActive);
        set => Volatile.Write(ref _reclaimActive, value);
    }

    private bool _reclaimActive;

    /// <summary>Whether any page of the zone is on an LRU list (read on a quiescent machine: a snapshot's writer).</summary>
    public bool HasLruPages => _lruPages.Any(n => n != 0);

    /// <summary>Pages on one of the zone's LRU lists (NR_ZONE_INACTIVE_FILE and friends), read without a lock.</summary>
    public long LruPages(LruList lru) => Volatile.Read(ref _lruPages[(int)lru]);

    /// <summary>
    /// zone_reclaimable_pages(): the file LRU pages, and the anon ones when anon can be reclaimed
    /// (can_reclaim_anon_pages(): there is swap, which PageAlloc never has).
    /// </summary>
    internal long ReclaimablePages() => LruPages(LruList.InactiveFile) + LruPages(LruList.ActiveFile);

    /// <summary>
    /// folio_add_lru() -> lruvec_add_folio() for a page the system has just allocated: the page
    /// joins the head of the list (the newest end; reclaim takes from the tail). The page must be an
    /// order-0, non-compound allocation with its one reference, not already listed; returns false
    /// (and changes nothing) when it is not, as for a page a client freed meanwhile.
    /// </summary>
    internal bool AddToLru(long pfn, LruList lru)
    {
        if (!Contains(pfn))
        {
            return false;
        }
        var idx = IndexOf(pfn);
        using var _ = RefLock.Enter();
        if (Flags[idx] != (byte)PageFlags.Allocated || RefCount[idx] != 1 || Order[idx] != 0)
        {
            return false;
        }
        _lruOf ??= new byte[SpannedPages];
        Flags[idx] = (byte)(PageFlags.Allocated | PageFlags.Lru);
        _lruOf[idx] = (byte)(lru + 1);
        _lru.AddHead((int)lru, idx);
        _lruPages[(int)lru]++;
        return true;
    }

    /// <summary>
    /// Every used order-0 page of a Movable pageblock joins the inactive file list, in pfn order (the
    /// lowest the oldest, at the tail): an imported or fragmented zone's movable memory as page cache.
    /// The machine is quiescent (a reboot in progress).
    /// </summary>
    internal void UsedMovablePagesToLru()
    {
        using var _ = RefLock.Enter();
        _lruOf ??= new byte[SpannedPages];
        for (var idx = 0; idx < SpannedPages; idx++)
        {
            if (Flags[idx] == (byte)PageFlags.Allocated && RefCount[idx] == 1 && Order[idx] == 0 && PageblockMigrateType(idx) == MigrateType.Movable)
            {
                Flags[idx] = (byte)(PageFlags.Allocated | PageFlags.Lru);
                _lruOf[idx] = (byte)(LruList.InactiveFile + 1);
                _lru.AddHead((int)LruList.InactiveFile, idx);
                _lruPages[(int)LruList.InactiveFile]++;
            }
        }
    }

    /// <summary>The list an LRU page is on; null for a page on none.</summary>
    internal LruList? LruOf(int idx) => _lruOf is { } map && map[idx] != 0 ? (LruList)(map[idx] - 1) : null;

    private void UnlinkLru(int idx, LruList lru)
    {
        _lru.Remove((int)lru, idx);
        _lruOf![idx] = 0;
        _lruPages[(int)lru]--;
    }

    /// <summary>
    /// shrink_inactive_list() on LRU_INACTIVE_FILE: isolate_lru_folios() takes up to
    /// <paramref name="nrToScan"/> pages from the tail, and shrink_folio_list() frees each (a clean,
    /// unmapped page-cache folio: folio_check_references() says reclaim, __remove_mapping() drops
    /// the page cache's reference), then free_unref_folios() hands them to this cpu's pcp
    /// (mm_page_free, then mm_page_free_batched, for each). Returns the pages reclaimed;
    /// <paramref name="scanned"/> the pages isolated.
    /// </summary>
    internal int ShrinkInactiveFile(int nrToScan, int cpu, out int scanned)
    {
        Span<int> isolated = stackalloc int[SwapClusterMax];
        nrToScan = Math.Min(nrToScan, SwapClusterMax);
        var tracing = _trace.Enabled;
        var n = 0;
        using (RefLock.Enter())
        {
            while (n < nrToScan && _lru.Last((int)LruList.InactiveFile) is var idx and not IntrusiveLists.Nil)
            {
                UnlinkLru(idx, LruList.InactiveFile);
                // The page cache held the only reference: it freezes the folio (folio_ref_freeze(1))
                // and frees it as free_pages_prepare() would.
                RefCount[idx] = 0;
                Flags[idx] = (byte)PageFlags.Allocated;
                PrepareFree(idx, 0, compound: false, tracing);
                isolated[n++] = idx;
            }
        }
        for (var i = 0; i < n; i++)
        {
            if (tracing)
            {
                _trace.Emit(TraceEventType.MmPageFreeBatched, Index, PfnOf(isolated[i]), 0, 0);
            }
            FreeFrozenPages(isolated[i], 0, cpu);
        }
        scanned = n;
        return n;
    }

    /// <summary>
    /// shrink_active_list(): up to <paramref name="nrToScan"/> pages from the tail of an active list
    /// go to the head of its inactive list. An unmapped page-cache page is deactivated whether or not
    /// it was referenced (only mapped executable pages keep their place). Returns the pages moved
    /// (pgrefill counts them as scanned, pgdeactivate as moved: the same here).
    /// </summary>
    internal int ShrinkActiveList(LruList active, int nrToScan)
    {
        var inactive = LruLists.Inactive(active);
        var n = 0;
        using (RefLock.Enter())
        {
            while (n < nrToScan && _lru.Last((int)active) is var idx and not IntrusiveLists.Nil)
            {
                UnlinkLru(idx, active);
                _lru.AddHead((int)inactive, idx);
                _lruOf![idx] = (byte)(inactive + 1);
                _lruPages[(int)inactive]++;
                n++;
            }
        }
        return n;
    }

    /// <summary>
    /// drop_pagecache_sb() -> invalidate_mapping_pages() over every file: every clean, unmapped
    /// page-cache page (all of PageAlloc's) is freed, in batches, both file lists. Returns the pages freed.
    /// </summary>
    internal long DropPageCache(int cpu)
    {
        long freed = 0;
        while (LruPages(LruList.ActiveFile) > 0)
        {
            ShrinkActiveList(LruList.ActiveFile, SwapClusterMax);
        }
        while (ShrinkInactiveFile(SwapClusterMax, cpu, out _) is var n and > 0)
        {
            freed += n;
        }
        return freed;
    }

    /// <summary>The refusal for a client's call on a page of the system's LRU lists.</summary>
    internal PageError LruPageRefused(int idx, string operation) => (Flags[idx] & (byte)PageFlags.Isolated) != 0
        ? new(PageErrorKind.LruPage, $"{operation}: pfn {Hex(PfnOf(idx))} is a page of the system's that is being migrated: only reclaim frees it and only migration moves it.")
        : new(PageErrorKind.LruPage,
        $"{operation}: pfn {Hex(PfnOf(idx))} is a {(LruOf(idx) is { } lru && LruLists.IsFile(lru) ? "page-cache" : "anon")} page of the system's, "
        + $"on zone {Key}'s {(LruOf(idx) is { } l ? LruLists.Name(l) : "lru")} list: only reclaim frees it and only migration moves it.");

    /// <summary>Whether a page is the system's: on an LRU list, or isolated from one for migration (not a client's).</summary>
    internal bool IsLru(int idx) => (Flags[idx] & (byte)(PageFlags.Lru | PageFlags.Isolated)) != 0;

    /// <summary>
    /// The invariant checker's part: every list's walk agrees with its counter and the map, every
    /// member is an order-0 allocation with its one reference, and every page flagged PG_lru is on
    /// the list the map names.
    /// </summary>
    private void CheckLruLists(Action<string> report)
    {
        long flagged = 0;
        for (var idx = 0; idx < SpannedPages; idx++)
        {
            if ((Flags[idx] & (byte)PageFlags.Isolated) != 0)
            {
                report($"pfn {Hex(PfnOf(idx))} is still isolated for migration");
            }
            if ((Flags[idx] & (byte)PageFlags.Lru) != 0)
            {
                flagged++;
                if (Flags[idx] != (byte)(PageFlags.Allocated | PageFlags.Lru) || RefCount[idx] != 1 || Order[idx] != 0)
                {
                    report($"LRU pfn {Hex(PfnOf(idx))} is not an order-0 allocation with one reference: flags {(PageFlags)Flags[idx]}, refcount {RefCount[idx]}, order {Order[idx]}");
                }
                if (LruOf(idx) is null)
                {
                    report($"LRU pfn {Hex(PfnOf(idx))} is on no list in the zone's LRU map");
                }
            }
            else if (_lruOf is { } map && map[idx] != 0)
            {
                report($"pfn {Hex(PfnOf(idx))} is in the LRU map but not flagged PG_lru");
            }
        }
        long listed = 0;
        for (var l = 0; l < LruLists.Count; l++)
        {
            long walked = 0;
            for (var idx = _lru.First(l); idx != IntrusiveLists.Nil && walked <= SpannedPages; idx = _lru.Next(idx))
            {
                walked++;
                if (LruOf(idx) != (LruList)l)
                {
                    report($"pfn {Hex(PfnOf(idx))} is on the {LruLists.Name((LruList)l)} list but the LRU map says {LruOf(idx)?.ToString() ?? "none"}");
                }
            }
            if (walked != _lruPages[l])
            {
                report($"the {LruLists.Name((LruList)l)} list holds {walked} pages, its counter says {_lruPages[l]}");
            }
            listed += walked;
        }
        if (listed != flagged)
        {
            report($"{flagged} pages are flagged PG_lru but the lists hold {listed}");
        }
    }
}

// The zone's LRUS snapshot section (docs/snapshot-format.md), written after PCPS: each list's
// length, then its pages from head to tail as distances, as the free lists are written; then the
// zone's compaction state and its watermark boost.
public sealed partial class Zone
{
    private void WriteLruSnapshot(Snapshots.SnapshotWriter w)
    {
        w.Section(Snapshots.SnapshotSection.Lru);
        for (var l = 0; l < LruLists.Count; l++)
        {
            var count = _lruPages[l];
            w.WriteInt64(count);
            long written = 0;
            var previous = 0;
            for (var idx = _lru.First(l); idx != IntrusiveLists.Nil; idx = _lru.Next(idx))
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
                throw ListDisagrees($"the {LruLists.Name((LruList)l)} list", (int)count);
            }
        }
        // compact_cached_free_pfn, compact_cached_migrate_pfn[2], compact_considered, compact_defer_shift, compact_order_failed
        w.WriteInt64s(CompactionState());
        w.WriteInt64(_watermarkBoost); // zone->watermark_boost
        w.WriteBool(_boostedFlag); // ZONE_BOOSTED_WATERMARK
    }

    /// <summary>Rebuilds the lists and the map; a member must be a page on no other list, flagged PG_lru.</summary>
    private void ReadLruSnapshot(Snapshots.SnapshotReader r, ulong[] listed, long members)
    {
        r.Section(Snapshots.SnapshotSection.Lru);
        for (var l = 0; l < LruLists.Count; l++)
        {
            var what = $"zone {Key}'s {LruLists.Name((LruList)l)} list";
            var count = r.ReadInt64($"the length of {what}", 0, SpannedPages - members);
            long idx = 0;
            for (long i = 0; i < count; i++)
            {
                idx += r.ReadInt32();
                CheckListMember(listed, idx, 0, what);
                if ((Flags[(int)idx] & (byte)PageFlags.Lru) == 0)
                {
                    throw Snapshots.SnapshotFailures.Inconsistent($"{what} names pfn {Hex(PfnOf((int)idx))}, which is not flagged PG_lru");
                }
                _lruOf ??= new byte[SpannedPages];
                _lruOf[idx] = (byte)(l + 1);
                _lru.AddTail(l, (int)idx);
            }
            _lruPages[l] = count;
            members += count;
        }
        Span<long> compaction = stackalloc long[6];
        r.ReadCounters(compaction[..3], $"zone {Key}'s cached compaction pfns");
        compaction[3] = r.ReadInt64($"zone {Key}'s compact_considered", 0, 1 << Reclaim.Compaction.MaxDeferShift);
        compaction[4] = r.ReadInt64($"zone {Key}'s compact_defer_shift", 0, Reclaim.Compaction.MaxDeferShift);
        compaction[5] = r.ReadInt64($"zone {Key}'s compact_order_failed", 0, MaxPageOrder + 1);
        RestoreCompactionState(compaction);
        RestoreBoost(r.ReadInt64($"zone {Key}'s watermark_boost", 0, SpannedPages), r.ReadBool($"zone {Key}'s ZONE_BOOSTED_WATERMARK"));
    }
}
