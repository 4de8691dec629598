using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Reclaim;

/// <summary>
/// Page reclaim (mm/vmscan.c, classic LRU, v6.12-v6.18): kswapd per node (wakeup_kswapd(),
/// balance_pgdat()), direct reclaim (try_to_free_pages()), the shrinking of a node's LRU lists
/// (shrink_node(), shrink_lruvec(), get_scan_count(), shrink_list()) and drop_caches.
/// <para>What the machine holds makes reclaim simple where the kernel's is not (docs/model.md):
/// there is no swap, so get_scan_count() always chooses SCAN_FILE and anon pages are neither scanned
/// nor aged; every page-cache page is clean and unmapped, so shrink_folio_list() frees every page it
/// is given and shrink_active_list() deactivates every page it scans; there are no memcg
/// hierarchies, slab shrinkers or writeback. A node's lists are kept per zone; a batch is taken from
/// the eligible zone whose list is longest.</para>
/// </summary>
public sealed class Vmscan
{
    private readonly Kswapd[] _kswapds;
    private readonly Tracepoints _trace;
    private int _anyWoken;

    internal Vmscan(IReadOnlyList<Zone> zones, Tracepoints trace)
    {
        _trace = trace;
        var byNode = zones.GroupBy(z => z.NodeId).OrderBy(g => g.Key).ToList();
        _kswapds = new Kswapd[byNode.Count == 0 ? 0 : byNode.Max(g => g.Key) + 1];
        foreach (var node in byNode)
        {
            _kswapds[node.Key] = new Kswapd(node.Key, [.. node.OrderBy(z => z.Type)]);
        }
    }

    /// <summary>The reclaim counters of /proc/vmstat.</summary>
    public VmscanCounters Counters { get; } = new();

    /// <summary>The machine's compaction, which kswapd wakes kcompactd through; set by the machine.</summary>
    internal Compaction? Compaction { get; set; }

    /// <summary>kswapd_failures per node, for zoneinfo's node_unreclaimable and forks.</summary>
    internal int KswapdFailures(int node) => _kswapds[node] is { } k ? Volatile.Read(ref k.Failures) : 0;

    /// <summary>A fork's reclaim state: the counters and each node's kswapd and kcompactd state (both sleep between calls).</summary>
    internal void CopyFrom(Vmscan source)
    {
        Counters.Restore(source.Counters.Read());
        for (var node = 0; node < _kswapds.Length; node++)
        {
            if (source._kswapds[node] is not null)
            {
                RestoreNodeState(node, source.NodeState(node));
            }
        }
    }

    /// <summary>
    /// A node's pglist_data reclaim state between calls, for forks and snapshots: kswapd_order and
    /// kswapd_highest_zoneidx (a wake that did not wake kswapd still merged them), the zone kswapd
    /// used last, kswapd_failures, kcompactd_max_order and kcompactd_highest_zoneidx.
    /// </summary>
    internal int[] NodeState(int node) => _kswapds[node] is { } k
        ? [k.Order, k.HighestZoneIdx, k.PreviousZoneIdx, k.Failures, k.KcompactdMaxOrder, k.KcompactdHighestZoneIdx]
        : new int[NodeStateLength];

    internal const int NodeStateLength = 6;

    internal void RestoreNodeState(int node, ReadOnlySpan<int> s)
    {
        if (_kswapds[node] is { } k)
        {
            (k.Order, k.HighestZoneIdx, k.PreviousZoneIdx, k.Failures, k.KcompactdMaxOrder, k.KcompactdHighestZoneIdx) = (s[0], s[1], s[2], s[3], s[4], s[5]);
        }
    }

    /// <summary>The nodes kswapd runs for (ids with zones).</summary>
    internal IEnumerable<int> Nodes => _kswapds.Where(k => k is not null).Select(k => k.Node);

    // ---- kswapd ----

    /// <summary>
    /// wakeup_kswapd(): merge the order and highest zone into the node's, and wake its kswapd
    /// unless it is awake already, hopeless, or its node is balanced for the request.
    /// </summary>
    internal void WakeupKswapd(Zone zone, GfpFlags gfp, int order, ZoneType highestZoneIdx, int cpu = 0)
    {
        var k = _kswapds[zone.NodeId];
        var kcompactd = false;
        lock (k.Lock)
        {
            if (k.HighestZoneIdx == Kswapd.NoZone || k.HighestZoneIdx < (int)highestZoneIdx)
            {
                k.HighestZoneIdx = (int)highestZoneIdx;
            }
            k.Order = Math.Max(k.Order, order);
            if (k.Running || k.Woken)
            {
                return; // !waitqueue_active(): kswapd is awake and will read the merged values
            }
            if (k.Hopeless || (PgdatBalanced(k, order, (int)highestZoneIdx) && !PgdatWatermarkBoosted(k, (int)highestZoneIdx)))
            {
                // Leave a hopeless or balanced node to direct reclaim, but a request that cannot
                // reclaim gets kcompactd's help for its order.
                kcompactd = (gfp & GfpFlags.DirectReclaim) == 0;
                goto done;
            }
            if (_trace.Enabled)
            {
                _trace.Emit(TraceEventType.MmVmscanWakeupKswapd, zone.Index, 0, order, 0, gfp: gfp, node: k.Node);
            }
            k.Woken = true;
        }
        Volatile.Write(ref _anyWoken, 1);
        return;
    done:
        if (kcompactd && Compaction?.WakeupKcompactd(k, order, (int)highestZoneIdx, cpu, runNow: false) == true)
        {
            Volatile.Write(ref _anyWoken, 1); // it runs once this call is done (RunWokenKswapds)
        }
    }

    /// <summary>Whether some kswapd was woken and has not run yet (one volatile read, for the allocation path).</summary>
    internal bool AnyWoken => Volatile.Read(ref _anyWoken) != 0;

    /// <summary>
    /// Runs every woken kcompactd (woken from an allocation) and every woken kswapd until it sleeps
    /// (kswapd()'s loop), on this thread and <paramref name="cpu"/>'s pcp. A daemon another thread is
    /// running is left to it.
    /// </summary>
    internal void RunWokenKswapds(int cpu)
    {
        Volatile.Write(ref _anyWoken, 0);
        foreach (var k in _kswapds)
        {
            if (k is null)
            {
                continue;
            }
            if (Interlocked.Exchange(ref k.KcompactdWoken, 0) != 0)
            {
                Compaction?.RunKcompactd(k, cpu);
            }
            lock (k.Lock)
            {
                if (!k.Woken || k.Running)
                {
                    continue;
                }
                k.Woken = false;
                k.Running = true;
            }
            try
            {
                RunKswapd(k, cpu);
            }
            finally
            {
                lock (k.Lock)
                {
                    k.Running = false;
                }
            }
        }
    }

    // Enough rounds for any run that reclaims (each balance_pgdat() either reclaims or counts a
    // failure, and 16 failures make the node hopeless); a bound on purpose, never reached in tests.
    private const int MaxKswapdRounds = 1024;

    /// <summary>
    /// kswapd()'s loop, entered where a wake finds it (in kswapd_try_to_sleep()): read and reset the
    /// merged order and zone, balance_pgdat(); then, when balancing dropped to a lower order, try to
    /// sleep for the order it was woken for (goto kswapd_try_sleep), else go round: try to sleep for
    /// whatever order wakes have merged since (kswapd_order, not reset). Again while it cannot sleep.
    /// </summary>
    private void RunKswapd(Kswapd k, int cpu)
    {
        for (var round = 0; round < MaxKswapdRounds; round++)
        {
            int order, idx;
            lock (k.Lock)
            {
                order = k.Order;
                idx = k.HighestZoneIdx == Kswapd.NoZone ? k.PreviousZoneIdx : k.HighestZoneIdx;
                k.Order = 0;
                k.HighestZoneIdx = Kswapd.NoZone;
                k.PreviousZoneIdx = idx;
            }
            if (_trace.Enabled)
            {
                Tracepoints.OnCpu(cpu);
                _trace.Emit(TraceEventType.MmVmscanKswapdWake, ZoneIndexFor(k, idx), 0, order, 0, node: k.Node);
            }
            var reclaimOrder = BalancePgdat(k, order, idx, cpu);
            var allocOrder = order;
            if (reclaimOrder >= order)
            {
                lock (k.Lock)
                {
                    allocOrder = reclaimOrder = k.Order; // the loop's top: alloc_order = reclaim_order = kswapd_order
                    idx = k.HighestZoneIdx == Kswapd.NoZone ? idx : k.HighestZoneIdx; // kswapd_highest_zoneidx(pgdat, prev)
                }
            }
            if (KswapdTryToSleep(k, allocOrder, reclaimOrder, idx, cpu))
            {
                return;
            }
        }
    }

    /// <summary>
    /// kswapd_try_to_sleep(): balanced (or hopeless), kswapd naps and then sleeps
    /// (mm_vmscan_kswapd_sleep); not, it counts kswapd_high_wmark_hit_quickly and goes back to work.
    /// </summary>
    private bool KswapdTryToSleep(Kswapd k, int allocOrder, int reclaimOrder, int idx, int cpu)
    {
        if (!PrepareKswapdSleep(k, reclaimOrder, idx))
        {
            Counters.Add(VmscanEvent.KswapdHighWmarkHitQuickly, 1);
            return false;
        }
        // kcompactd compacts for the order kswapd was woken for, now that there is free memory to
        // compact into. The nap takes no simulated time, so it ends unwoken and the second check sees
        // what the first did.
        Compaction?.WakeupKcompactd(k, allocOrder, idx, cpu);
        if (_trace.Enabled)
        {
            _trace.Emit(TraceEventType.MmVmscanKswapdSleep, ZoneIndexFor(k, idx), 0, 0, 0, node: k.Node);
        }
        return true;
    }

    /// <summary>pgdat_watermark_boosted(): some zone up to the index has a watermark boost.</summary>
    private static bool PgdatWatermarkBoosted(Kswapd k, int highestZoneIdx) =>
        k.Zones.Any(z => (int)z.Type <= highestZoneIdx && z.WatermarkBoost != 0);

    /// <summary>prepare_kswapd_sleep(): hopeless, or pgdat_balanced().</summary>
    private static bool PrepareKswapdSleep(Kswapd k, int order, int idx) => k.Hopeless || PgdatBalanced(k, order, idx);

    /// <summary>
    /// pgdat_balanced(): some zone of the node up to <paramref name="highestZoneIdx"/> meets its high
    /// watermark for the order (zone_watermark_ok_safe(), no allocation flags); a node without such
    /// a zone is balanced.
    /// </summary>
    private static bool PgdatBalanced(Kswapd k, int order, int highestZoneIdx)
    {
        var any = false;
        foreach (var zone in k.Zones)
        {
            if ((int)zone.Type > highestZoneIdx)
            {
                break;
            }
            any = true;
            if (zone.ZoneWatermarkOk(order, zone.Watermarks.High, (ZoneType)highestZoneIdx, AllocFlags.WmarkMin))
            {
                return true;
            }
        }
        return !any;
    }

    /// <summary>
    /// balance_pgdat(): from DEF_PRIORITY down to 1, shrink the node until it is balanced for the
    /// order (dropped to 0 once compact_gap(order) pages were reclaimed). A watermark boost on the
    /// zones makes it reclaim that many pages first, even on a balanced node, at priorities no
    /// lower than DEF_PRIORITY - 2 (boosted reclaim; it restarts unboosted if the node is not
    /// balanced), and comes off at the end. Counts pageoutrun; a run that reclaims nothing counts a
    /// kswapd failure. The zones are ZONE_RECLAIM_ACTIVE meanwhile. Returns the order it ended with.
    /// </summary>
    private int BalancePgdat(Kswapd k, int order, int highestZoneIdx, int cpu)
    {
        Counters.Add(VmscanEvent.PageOutRun, 1);
        var zoneBoosts = k.Zones.Select(z => (int)z.Type <= highestZoneIdx ? z.WatermarkBoost : 0).ToArray();
        var nrBoostReclaim = zoneBoosts.Sum();
        var boosted = nrBoostReclaim != 0;
        var sc = new ScanControl { Order = order, ReclaimIdx = highestZoneIdx, IsKswapd = true };
        SetReclaimActive(k, highestZoneIdx, true);
        try
        {
        restart:
            sc.Priority = DefPriority;
            do
            {
                var reclaimedBefore = sc.NrReclaimed;
                var raisePriority = true;
                sc.ReclaimIdx = highestZoneIdx;
                var balanced = PgdatBalanced(k, sc.Order, highestZoneIdx);
                if (!balanced && nrBoostReclaim != 0)
                {
                    nrBoostReclaim = 0; // a node that needs real reclaim gets it, unboosted
                    goto restart;
                }
                if (nrBoostReclaim == 0 && balanced)
                {
                    return sc.Order;
                }
                if (nrBoostReclaim != 0 && sc.Priority == DefPriority - 2)
                {
                    raisePriority = false; // boosted reclaim goes no deeper
                }
                sc.NrScanned = 0;
                if (KswapdShrinkNode(k, ref sc, cpu))
                {
                    raisePriority = false;
                }
                var reclaimed = sc.NrReclaimed - reclaimedBefore;
                nrBoostReclaim -= Math.Min(nrBoostReclaim, reclaimed);
                if (nrBoostReclaim != 0 && reclaimed == 0)
                {
                    break; // a boost reclaim that makes no progress stops rather than loop
                }
                if (raisePriority || reclaimed == 0)
                {
                    sc.Priority--;
                }
            }
            while (sc.Priority >= 1);
            if (sc.NrReclaimed == 0)
            {
                Interlocked.Increment(ref k.Failures);
            }
            return sc.Order;
        }
        finally
        {
            SetReclaimActive(k, highestZoneIdx, false);
            if (boosted)
            {
                for (var i = 0; i < k.Zones.Length; i++)
                {
                    if (zoneBoosts[i] != 0)
                    {
                        k.Zones[i].RemoveWatermarkBoost(zoneBoosts[i]);
                    }
                }
                Compaction?.WakeupKcompactd(k, PageblockOrder, highestZoneIdx, cpu); // now there is likely space to defragment pageblocks
            }
        }
    }

    private static void SetReclaimActive(Kswapd k, int highestZoneIdx, bool active)
    {
        foreach (var zone in k.Zones)
        {
            if ((int)zone.Type <= highestZoneIdx)
            {
                zone.ReclaimActive = active;
            }
        }
    }

    /// <summary>
    /// kswapd_shrink_node(): reclaim up to the eligible zones' high watermarks (at least
    /// SWAP_CLUSTER_MAX each); a high-order run drops to order 0 once compact_gap(order) pages are
    /// free. True when it scanned (or reclaimed) as much as it set out to, which holds the priority.
    /// </summary>
    private bool KswapdShrinkNode(Kswapd k, ref ScanControl sc, int cpu)
    {
        sc.NrToReclaim = 0;
        foreach (var zone in k.Zones)
        {
            if ((int)zone.Type <= sc.ReclaimIdx)
            {
                sc.NrToReclaim += Math.Max(zone.Watermarks.High, SwapClusterMax);
            }
        }
        var before = sc.NrReclaimed;
        ShrinkNode(k, ref sc, cpu);
        if (sc.Order > 0 && sc.NrReclaimed >= 2L << sc.Order)
        {
            sc.Order = 0;
        }
        return Math.Max(sc.NrScanned, sc.NrReclaimed - before) >= sc.NrToReclaim;
    }

    // ---- direct reclaim ----

    /// <summary>
    /// try_to_free_pages() -> do_try_to_free_pages(): from DEF_PRIORITY down to 0, shrink each node
    /// of the zonelist once (zones up to gfp_zone()), until SWAP_CLUSTER_MAX pages are reclaimed.
    /// Counts allocstall_&lt;gfp_zone&gt; per pass; a pass that reclaimed nothing is retried once
    /// with the memcg walk made full (a no-op here) and once more with deactivation forced, if it
    /// skipped an active list. Returns the pages reclaimed (did_some_progress).
    /// </summary>
    internal long TryToFreePages(IReadOnlyList<Zone> zonelist, int order, GfpFlags gfp, ZoneType gfpZone, int cpu)
    {
        if (_trace.Enabled)
        {
            _trace.Emit(TraceEventType.MmVmscanDirectReclaimBegin, zonelist[0].Index, 0, order, 0, gfp: gfp, node: zonelist[0].NodeId);
        }
        var sc = new ScanControl { NrToReclaim = SwapClusterMax, ReclaimIdx = (int)gfpZone, Order = order };
        var fullWalk = false;
        while (true)
        {
            Counters.Add(VmscanEvent.AllocstallDma + (int)gfpZone, 1);
            sc.Priority = DefPriority;
            do
            {
                sc.NrScanned = 0;
                ShrinkZones(zonelist, ref sc, cpu);
                if (sc.NrReclaimed >= sc.NrToReclaim)
                {
                    break;
                }
            }
            while (--sc.Priority >= 0);
            if (sc.NrReclaimed > 0)
            {
                break;
            }
            if (!fullWalk)
            {
                fullWalk = true; // sc->memcg_full_walk: there is one memcg to walk
                continue;
            }
            if (sc.SkippedDeactivate && !sc.ForceDeactivate)
            {
                sc.ForceDeactivate = true;
                sc.SkippedDeactivate = false;
                continue;
            }
            break;
        }
        if (_trace.Enabled)
        {
            _trace.Emit(TraceEventType.MmVmscanDirectReclaimEnd, zonelist[0].Index, 0, 0, 0, node: zonelist[0].NodeId, nrPages: sc.NrReclaimed);
        }
        return sc.NrReclaimed;
    }

    /// <summary>shrink_zones(): each node of the zonelist once, in the zonelist's order, for its zones up to reclaim_idx.</summary>
    private void ShrinkZones(IReadOnlyList<Zone> zonelist, ref ScanControl sc, int cpu)
    {
        Span<bool> done = stackalloc bool[_kswapds.Length];
        foreach (var zone in zonelist)
        {
            if ((int)zone.Type > sc.ReclaimIdx || done[zone.NodeId])
            {
                continue;
            }
            done[zone.NodeId] = true;
            ShrinkNode(_kswapds[zone.NodeId], ref sc, cpu);
        }
    }

    // ---- shrinking a node ----

    /// <summary>
    /// shrink_node(): prepare_scan_control() decides whether the file active list may be deactivated
    /// (inactive_is_low(), or forced), then shrink_lruvec(). Any progress resets kswapd_failures.
    /// </summary>
    private void ShrinkNode(Kswapd k, ref ScanControl sc, int cpu)
    {
        sc.MayDeactivateFile = sc.ForceDeactivate || InactiveIsLow(k, LruList.InactiveFile);
        var before = sc.NrReclaimed;
        ShrinkLruvec(k, ref sc, cpu);
        if (sc.NrReclaimed > before)
        {
            Volatile.Write(ref k.Failures, 0);
        }
    }

    /// <summary>
    /// shrink_lruvec() with get_scan_count()'s SCAN_FILE: each file list's eligible pages
    /// &gt;&gt; priority are scanned SWAP_CLUSTER_MAX at a time, the inactive list first; it stops once
    /// nr_to_reclaim is reclaimed, except for direct reclaim at DEF_PRIORITY (proportional_reclaim),
    /// which scans all it set out to.
    /// </summary>
    private void ShrinkLruvec(Kswapd k, ref ScanControl sc, int cpu)
    {
        var nrInactive = EligibleLruPages(k, LruList.InactiveFile, sc.ReclaimIdx) >> sc.Priority;
        var nrActive = EligibleLruPages(k, LruList.ActiveFile, sc.ReclaimIdx) >> sc.Priority;
        var proportional = !sc.IsKswapd && sc.Priority == DefPriority;
        long reclaimed = 0;
        while (nrInactive > 0 || nrActive > 0)
        {
            if (nrInactive > 0)
            {
                var n = (int)Math.Min(nrInactive, SwapClusterMax);
                nrInactive -= n;
                reclaimed += ShrinkInactiveList(k, n, ref sc, cpu);
            }
            if (nrActive > 0)
            {
                var n = (int)Math.Min(nrActive, SwapClusterMax);
                nrActive -= n;
                if (sc.MayDeactivateFile)
                {
                    ShrinkActiveList(k, n, ref sc);
                }
                else
                {
                    sc.SkippedDeactivate = true;
                }
            }
            if (reclaimed < sc.NrToReclaim || proportional)
            {
                continue;
            }
            break; // nothing anon is scanned, so there is no other type to scale down
        }
        sc.NrReclaimed += reclaimed;
    }

    /// <summary>
    /// shrink_inactive_list() on the file list: isolate up to <paramref name="nrToScan"/> pages from
    /// the tails of the eligible zones' lists and free them. Counts pgscan_kswapd or pgscan_direct and
    /// pgscan_file for the pages scanned, pgsteal_* for those reclaimed.
    /// </summary>
    private long ShrinkInactiveList(Kswapd k, int nrToScan, ref ScanControl sc, int cpu)
    {
        long scanned = 0, reclaimed = 0;
        while (scanned < nrToScan && LongestEligible(k, LruList.InactiveFile, sc.ReclaimIdx) is { } zone)
        {
            reclaimed += zone.ShrinkInactiveFile(nrToScan - (int)scanned, cpu, out var taken);
            scanned += taken;
        }
        sc.NrScanned += scanned;
        Counters.Add(sc.IsKswapd ? VmscanEvent.PgscanKswapd : VmscanEvent.PgscanDirect, scanned);
        Counters.Add(VmscanEvent.PgscanFile, scanned);
        Counters.Add(sc.IsKswapd ? VmscanEvent.PgstealKswapd : VmscanEvent.PgstealDirect, reclaimed);
        Counters.Add(VmscanEvent.PgstealFile, reclaimed);
        return reclaimed;
    }

    /// <summary>shrink_active_list(): up to <paramref name="nrToScan"/> pages of the eligible zones' active file lists to their inactive lists (pgrefill, pgdeactivate).</summary>
    private void ShrinkActiveList(Kswapd k, int nrToScan, ref ScanControl sc)
    {
        long moved = 0;
        while (moved < nrToScan && LongestEligible(k, LruList.ActiveFile, sc.ReclaimIdx) is { } zone)
        {
            moved += zone.ShrinkActiveList(LruList.ActiveFile, nrToScan - (int)moved);
        }
        Counters.Add(VmscanEvent.PgRefill, moved);
        Counters.Add(VmscanEvent.PgDeactivate, moved);
    }

    /// <summary>
    /// inactive_is_low(): the node's inactive list is too small for its active one when
    /// inactive * inactive_ratio &lt; active, inactive_ratio being int_sqrt(10 * GiB of the two lists), or 1 under a GiB.
    /// </summary>
    internal static bool InactiveIsLow(IEnumerable<Zone> nodeZones, LruList inactiveLru)
    {
        long inactive = 0, active = 0;
        foreach (var zone in nodeZones)
        {
            inactive += zone.LruPages(inactiveLru);
            active += zone.LruPages(inactiveLru + 1);
        }
        var gb = (inactive + active) >> (30 - PageShift);
        var ratio = gb > 0 ? IntSqrt(10 * gb) : 1;
        return inactive * ratio < active;
    }

    private static bool InactiveIsLow(Kswapd k, LruList inactiveLru) => InactiveIsLow(k.Zones, inactiveLru);

    /// <summary>int_sqrt(): the floor of the square root.</summary>
    internal static long IntSqrt(long x)
    {
        var r = (long)Math.Sqrt(x);
        while (r * r > x)
        {
            r--;
        }
        while ((r + 1) * (r + 1) <= x)
        {
            r++;
        }
        return r;
    }

    /// <summary>lruvec_lru_size(lruvec, lru, reclaim_idx): the list's pages in the node's zones up to reclaim_idx.</summary>
    private static long EligibleLruPages(Kswapd k, LruList lru, int reclaimIdx)
    {
        long pages = 0;
        foreach (var zone in k.Zones)
        {
            if ((int)zone.Type <= reclaimIdx)
            {
                pages += zone.LruPages(lru);
            }
        }
        return pages;
    }

    /// <summary>The eligible zone whose list is longest (the highest on a tie), or null when every eligible list is empty.</summary>
    private static Zone? LongestEligible(Kswapd k, LruList lru, int reclaimIdx)
    {
        Zone? best = null;
        long most = 0;
        foreach (var zone in k.Zones)
        {
            if ((int)zone.Type <= reclaimIdx && zone.LruPages(lru) is var n && n > 0 && n >= most)
            {
                best = zone;
                most = n;
            }
        }
        return best;
    }

    /// <summary>The index of the node's highest zone up to <paramref name="zoneIdx"/>, for a vmscan event's zone.</summary>
    private static int ZoneIndexFor(Kswapd k, int zoneIdx) =>
        k.Zones.LastOrDefault(z => (int)z.Type <= zoneIdx)?.Index ?? k.Zones[0].Index;

    // ---- drop_caches ----

    /// <summary>
    /// Writing /proc/sys/vm/drop_caches (drop_caches_sysctl_handler()): bit 1 drops the page cache
    /// (every clean, unmapped page-cache page: all of PageAlloc's) and counts drop_pagecache; bit 2
    /// drops slab (there is none) and counts drop_slab; bit 4 only silences the kernel's message.
    /// Pages dropped count neither pgscan nor pgsteal. Returns the pages freed.
    /// </summary>
    internal long DropCaches(IReadOnlyList<Zone> zones, int value, int cpu)
    {
        long freed = 0;
        if ((value & 1) != 0)
        {
            foreach (var zone in zones)
            {
                freed += zone.DropPageCache(cpu);
            }
            Counters.Add(VmscanEvent.DropPagecache, 1);
        }
        if ((value & 2) != 0)
        {
            Counters.Add(VmscanEvent.DropSlab, 1);
        }
        return freed;
    }

    /// <summary>struct scan_control: the fields PageAlloc's reclaim reads.</summary>
    private struct ScanControl
    {
        public long NrToReclaim;
        public int ReclaimIdx;
        public int Order;
        public int Priority;
        public long NrScanned;
        public long NrReclaimed;
        public bool IsKswapd;
        public bool MayDeactivateFile;
        public bool ForceDeactivate;
        public bool SkippedDeactivate;
    }
}
