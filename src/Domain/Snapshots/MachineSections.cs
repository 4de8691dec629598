using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.FaultInjection;
using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// The body of a snapshot, section by section: MACH (the machine's shape and min_free_kbytes),
/// MCGS (each memcg's memory.current and max events), FPAL (fail_page_alloc), one set of zone
/// sections per zone (<see cref="Zone.WriteSnapshot"/>), END. The configuration itself is in the
/// configuration section, before the body.
/// </summary>
internal static class MachineSections
{
    public static void Write(Machine machine, SnapshotWriter w, bool withLru)
    {
        w.Section(SnapshotSection.Machine);
        w.WriteInt32(machine.Zones.Count);
        w.WriteInt32(machine.Cpus);
        w.WriteInt64(machine.MinFreeKbytes);

        w.Section(SnapshotSection.Memcgs);
        var memcgs = machine.Memcgs.ToList();
        w.WriteInt32(memcgs.Count);
        foreach (var memcg in memcgs)
        {
            w.WriteInt64(memcg.UsagePages); // memory.current
            w.WriteInt64(memcg.MaxEvents); // memory.events max
        }

        w.Section(SnapshotSection.FailPageAlloc);
        var f = machine.FailPageAlloc.State;
        w.WriteInt32(f.Probability);
        w.WriteInt64(f.Interval);
        w.WriteInt32(f.Times);
        w.WriteInt32(f.Space);
        w.WriteInt32(f.Verbose);
        w.WriteInt32(f.MinOrder);
        w.WriteBool(f.IgnoreGfpWait);
        w.WriteBool(f.IgnoreGfpHighmem);
        w.WriteInt64(f.IntervalCount);
        w.WriteInt64(f.Injected);
        w.WriteInt64(f.RandomState);

        if (withLru)
        {
            w.Section(SnapshotSection.Vmscan);
            w.WriteInt64s(machine.Vmscan.Counters.Read());
            var nodes = machine.Vmscan.Nodes.ToList();
            w.WriteInt32(nodes.Count);
            foreach (var node in nodes)
            {
                w.WriteInt32(node);
                // kswapd_order, kswapd_highest_zoneidx, the zone kswapd used last, kswapd_failures,
                // kcompactd_max_order, kcompactd_highest_zoneidx
                foreach (var value in machine.Vmscan.NodeState(node))
                {
                    w.WriteInt32(value);
                }
            }
        }
        foreach (var zone in machine.Zones)
        {
            zone.WriteSnapshot(w, withLru);
        }
        w.Section(SnapshotSection.End);
    }

    /// <summary>Fills an unbooted machine of the snapshot's configuration; returns each zone's lock statistics, to set last.</summary>
    public static ZoneLocks[] Read(Machine machine, SnapshotReader r, bool withLru)
    {
        r.Section(SnapshotSection.Machine);
        var zones = r.ReadInt32();
        var cpus = r.ReadInt32();
        var minFreeKbytes = r.ReadInt64();
        if (zones != machine.Zones.Count || cpus != machine.Cpus)
        {
            throw SnapshotFailures.Inconsistent($"its machine has {zones} zones and {cpus} cpus, where its configuration gives {machine.Zones.Count} and {machine.Cpus}");
        }
        if (minFreeKbytes != machine.MinFreeKbytes)
        {
            throw SnapshotFailures.Inconsistent($"its min_free_kbytes is {minFreeKbytes}, where its configuration gives {machine.MinFreeKbytes}");
        }

        r.Section(SnapshotSection.Memcgs);
        var memcgs = machine.Memcgs.ToList();
        var count = r.ReadInt32();
        if (count != memcgs.Count)
        {
            throw SnapshotFailures.Inconsistent($"it holds {count} memcgs, where its configuration has {memcgs.Count}");
        }
        foreach (var memcg in memcgs)
        {
            var usage = r.ReadInt64($"memcg {memcg.Name}'s memory.current", 0, memcg.MaxPages);
            var maxEvents = r.ReadInt64($"memcg {memcg.Name}'s max events", 0, long.MaxValue);
            memcg.Restore(usage, maxEvents);
        }

        r.Section(SnapshotSection.FailPageAlloc);
        // The ranges the debugfs files (and the API's PATCH) accept.
        machine.FailPageAlloc.State = new FailPageAllocState(
            Probability: r.ReadInt32("fail_page_alloc's probability", 0, 100),
            Interval: r.ReadInt64("fail_page_alloc's interval", 1, long.MaxValue),
            Times: r.ReadInt32("fail_page_alloc's times", -1, int.MaxValue),
            Space: r.ReadInt32("fail_page_alloc's space", 0, int.MaxValue),
            Verbose: r.ReadInt32("fail_page_alloc's verbose", 0, 2),
            MinOrder: r.ReadInt32("fail_page_alloc's min-order", 0, PageAllocConstants.MaxPageOrder),
            IgnoreGfpWait: r.ReadBool("fail_page_alloc's ignore-gfp-wait"),
            IgnoreGfpHighmem: r.ReadBool("fail_page_alloc's ignore-gfp-highmem"),
            IntervalCount: r.ReadInt64("fail_page_alloc's call count", 0, long.MaxValue),
            Injected: r.ReadInt64("fail_page_alloc's injected failures", 0, long.MaxValue),
            RandomState: r.ReadInt64());

        if (withLru)
        {
            r.Section(SnapshotSection.Vmscan);
            Span<long> counts = stackalloc long[Reclaim.VmscanEvents.Count];
            r.ReadCounters(counts, "reclaim's vm events");
            machine.Vmscan.Counters.Restore(counts);
            var expected = machine.Vmscan.Nodes.ToList();
            var nodes = r.ReadInt32("the number of kswapd nodes", 0, r.Remaining);
            if (nodes != expected.Count)
            {
                throw SnapshotFailures.Inconsistent($"it holds kswapd state for {nodes} nodes, where its configuration has {expected.Count}");
            }
            foreach (var node in expected)
            {
                var id = r.ReadInt32();
                if (id != node)
                {
                    throw SnapshotFailures.Inconsistent($"its kswapd state names node {id} where node {node} was expected");
                }
                // kswapd_failures stops counting where it matters (MAX_RECLAIM_RETRIES), but may pass it.
                machine.Vmscan.RestoreNodeState(node,
                [
                    r.ReadInt32($"node {node}'s kswapd_order", 0, PageAllocConstants.MaxPageOrder),
                    r.ReadInt32($"node {node}'s kswapd_highest_zoneidx", 0, ZoneTypes.Count),
                    r.ReadInt32($"node {node}'s last kswapd zone", 0, ZoneTypes.Count - 1),
                    r.ReadInt32($"node {node}'s kswapd_failures", 0, int.MaxValue),
                    r.ReadInt32($"node {node}'s kcompactd_max_order", 0, PageAllocConstants.MaxPageOrder),
                    r.ReadInt32($"node {node}'s kcompactd_highest_zoneidx", 0, ZoneTypes.Count - 1),
                ]);
            }
        }

        var locks = new ZoneLocks[machine.Zones.Count];
        for (var i = 0; i < locks.Length; i++)
        {
            locks[i] = machine.Zones[i].ReadSnapshot(r, memcgs.Count, withLru);
        }
        r.Section(SnapshotSection.End);
        return locks;
    }
}
