using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;
using static PageAlloc.Domain.Model.PageAllocConstants;

using PageAlloc.Domain.Replay;

namespace PageAlloc.Tests.Unit.Reference;

// TraceReplayer as it was before issue 27 (a string per line, the regex parser, Gfp.TryParse per
// allocation), kept here only, as the reference the new replayer's results are compared with byte for byte.

/// <summary>
/// Replays a real kernel's kmem trace on a simulated machine, line by line (memory stays bounded by
/// the live allocations, not the trace's length):
/// <list type="bullet">
/// <item>mm_page_alloc with a page: alloc_pages() with the trace's order and gfp, the preferred zone
/// given, on the trace's cpu folded onto the machine's; each trace pfn maps to the simulated block it
/// was given. A trace pfn still live (the trace lost its free) has its stale block freed first, counted.
/// A NULL page (the real allocation failed) is counted and skipped.</item>
/// <item>mm_page_free: __free_pages() of the mapped block; a free of one page of a larger non-compound
/// block splits it first (split_page(), as the kernel's caller did). Frees of pfns allocated before
/// the trace began are counted and skipped.</item>
/// <item>mm_page_free_batched of a page this cpu freed just before is the same free (free_unref_folios()
/// emits both) and is skipped; the zone_locked, pcpu_drain and extfrag events are the real kernel's
/// view, counted beside the simulator's.</item>
/// </list>
/// </summary>
internal sealed class ReferenceTraceReplayer
{
    /// <summary>How many pfns per cpu count as "just freed" for mm_page_free_batched (a folio batch holds 31).</summary>
    private const int RecentFrees = 64;

    private readonly Machine _machine;
    private readonly Zone _preferred;
    private readonly int _timelinePoints;
    private long _timelineEvery;
    private readonly Dictionary<long, Block> _live = [];
    private readonly HashSet<long> _failed = [];
    private readonly Queue<long>[] _recentFrees;
    private readonly ReplayCounts _counts = new();
    private readonly List<ReplaySnapshot> _timeline = [];
    private readonly ZoneCounters[] _before;

    // The simulator's own mm_page_alloc_extfrag events, to count its fallbacks by migratetype as the trace's are.
    private readonly PageAlloc.Domain.Tracing.TraceListener _fallbacks;

    /// <summary>A simulated block a trace pfn maps to.</summary>
    private readonly record struct Block(Zone Zone, long Pfn, int Order, bool Compound);

    /// <param name="timelinePoints">
    /// The most timeline snapshots kept (the final one beside them): when the timeline reaches it,
    /// every second snapshot is dropped and the interval doubles, so a timeline of any trace stays
    /// this long at most, and its interval is the result's TimelineEvery.
    /// </param>
    public ReferenceTraceReplayer(Machine machine, Zone preferred, int timelineEvery = 2000, int timelinePoints = DefaultTimelinePoints)
    {
        _machine = machine;
        _preferred = preferred;
        _timelineEvery = Math.Max(1, timelineEvery);
        _timelinePoints = Math.Max(1, timelinePoints);
        _recentFrees = [.. Enumerable.Range(0, machine.Cpus).Select(_ => new Queue<long>())];
        _before = [.. machine.Zones.Select(z => z.Counters())];
        _fallbacks = machine.Tracepoints.Listen(
            new PageAlloc.Domain.Tracing.TraceFilter(PageAlloc.Domain.Tracing.TraceFilter.TypeBit(PageAlloc.Domain.Tracing.TraceEventType.MmPageAllocExtfrag)), capacity: 1 << 16);
    }

    /// <summary>The most timeline snapshots a replay keeps unless told otherwise (Limits:ReplayTimelinePoints).</summary>
    public const int DefaultTimelinePoints = TraceReplayer.DefaultTimelinePoints;

    /// <summary>Called with each timeline snapshot as the replay takes it: progress for long traces.</summary>
    public Action<ReplaySnapshot>? OnSnapshot { get; init; }

    /// <summary>Reads one line of a trace.</summary>
    public void Read(string line)
    {
        _counts.Lines++;
        if (!RegexKmemTraceParser.TryParse(line, out var record))
        {
            _counts.NotEvents++;
            if (_counts.FirstNotEvents.Count < 5 && line.Length > 0)
            {
                _counts.FirstNotEvents.Add(line.Length > 200 ? line[..200] : line);
            }
            return;
        }
        _counts.Events++;
        AdvanceClock(record.Time);
        var cpu = record.Cpu % _machine.Cpus;
        switch (record.Event)
        {
            case KmemEvent.Alloc:
                Alloc(record, cpu);
                break;
            case KmemEvent.Free:
                Free(record.Pfn, record.Order, cpu);
                Remember(cpu, record.Pfn);
                break;
            case KmemEvent.FreeBatched:
                if (_recentFrees[cpu].Contains(record.Pfn))
                {
                    _counts.Skip("batched-duplicate");
                }
                else
                {
                    Free(record.Pfn, 0, cpu);
                }
                break;
            case KmemEvent.AllocZoneLocked:
                (record.Flag ? _counts.TraceZoneLockedRefill : _counts.TraceZoneLockedBuddy)[record.Order]++;
                break;
            case KmemEvent.PcpuDrain:
                _counts.TracePcpuDrainBlocks++;
                break;
            case KmemEvent.Extfrag:
                _counts.TraceExtfrag++;
                ReplayCounts.Fallback(_counts.TraceFallbacks, record.MigrateType, record.FallbackMigrateType, record.Flag);
                break;
        }
        if (_counts.Events % _timelineEvery == 0 && ThinnedTimeline())
        {
            var snapshot = Snapshot();
            _timeline.Add(snapshot);
            OnSnapshot?.Invoke(snapshot);
        }
    }

    /// <summary>
    /// Whether a snapshot is due at this event after the timeline is thinned: at its limit, the
    /// interval doubles and only the snapshots at its multiples stay (every second one).
    /// </summary>
    private bool ThinnedTimeline()
    {
        if (_timeline.Count < _timelinePoints)
        {
            return true;
        }
        _timelineEvery *= 2;
        var every = _timelineEvery;
        _timeline.RemoveAll(s => s.Events % every != 0);
        return _counts.Events % every == 0;
    }

    /// <summary>
    /// The vmstat worker as the trace's clock moves: one VmstatUpdate() (decay_pcp_high() on every
    /// cpu) for each whole second passed since the first event. A gap of more than
    /// <see cref="MaxIntervalsPerGap"/> seconds runs that many: by then every high has decayed to
    /// high_min and the kernel's worker would have gone idle.
    /// </summary>
    private void AdvanceClock(double time)
    {
        var second = (long)Math.Floor(time);
        if (_clockSecond is not { } clock)
        {
            _clockSecond = second;
            return;
        }
        var intervals = Math.Min(second - clock, MaxIntervalsPerGap);
        for (var i = 0; i < intervals; i++)
        {
            _machine.VmstatUpdate();
            _counts.VmstatIntervals++;
        }
        if (second > clock)
        {
            _clockSecond = second;
        }
    }

    private const int MaxIntervalsPerGap = 64;

    private long? _clockSecond;

    private void Alloc(KmemRecord record, int cpu)
    {
        if (record.Pfn == 0)
        {
            _counts.Skip("failed-in-trace");
            return;
        }
        if (_live.Remove(record.Pfn, out var stale))
        {
            // The trace lost this pfn's free: give the stale block back before reusing the pfn.
            FreeBlock(stale, cpu);
            _counts.StaleFreed++;
        }
        _failed.Remove(record.Pfn);
        if (!Gfp.TryParse(record.Gfp ?? "GFP_KERNEL", out var gfp, out _))
        {
            _counts.Skip("unknown-gfp");
            return;
        }
        var result = _machine.AllocPages(_preferred, record.Order, gfp, cpu);
        if (result.Error is not null)
        {
            _counts.SimulatedFailuresByOrder[record.Order]++;
            _failed.Add(record.Pfn);
            return;
        }
        var b = result.Value;
        _live[record.Pfn] = new Block(b.Zone, b.Pfn, b.Order, b.Compound);
        _counts.Allocations++;
    }

    private void Free(long pfn, int order, int cpu)
    {
        if (_live.TryGetValue(pfn, out var block) && block.Order == order)
        {
            _live.Remove(pfn);
            FreeBlock(block, cpu);
            _counts.Frees++;
            return;
        }
        if (FindContaining(pfn) is { } head && _live[head] is { Compound: false } whole && whole.Order > order)
        {
            // A free of part of a non-compound block: its caller had split it (split_page()).
            _live.Remove(head);
            if (whole.Zone.SplitPage(whole.Pfn, whole.Order).IsSuccess)
            {
                for (var i = 0; i < 1 << whole.Order; i++)
                {
                    _live[head + i] = new Block(whole.Zone, whole.Pfn + i, 0, false);
                }
                _counts.Splits++;
                Free(pfn, order, cpu);
                return;
            }
            _live[head] = whole;
        }
        _counts.Skip(_failed.Remove(pfn) ? "free-of-failed-allocation"
            : FindContaining(pfn) is not null ? "free-order-mismatch"
            : "allocated-before-trace");
    }

    /// <summary>The live head whose block holds the pfn, if any.</summary>
    private long? FindContaining(long pfn)
    {
        for (var order = 0; order <= MaxPageOrder; order++)
        {
            var head = pfn & ~((1L << order) - 1);
            if (_live.TryGetValue(head, out var b) && pfn < head + (1L << b.Order))
            {
                return head;
            }
        }
        return null;
    }

    private void FreeBlock(Block b, int cpu)
    {
        var result = b.Zone.FreePages(b.Pfn, b.Order, cpu);
        if (result.Error is not null)
        {
            _counts.Skip("simulated-free-refused"); // cannot happen while the map is right: counted, never hidden
        }
    }

    private void Remember(int cpu, long pfn)
    {
        var recent = _recentFrees[cpu];
        recent.Enqueue(pfn);
        if (recent.Count > RecentFrees)
        {
            recent.Dequeue();
        }
    }

    private void DrainFallbacks()
    {
        while (_fallbacks.Events.TryRead(out var e))
        {
            ReplayCounts.Fallback(_counts.SimulatedFallbacks, e.MigrateType, e.FallbackMigrateType, e.Flag);
        }
        _counts.SimulatedFallbacksLost += _fallbacks.TakeLost();
    }

    private ReplaySnapshot Snapshot()
    {
        DrainFallbacks();
        var s = _preferred.Stats();
        return new ReplaySnapshot(_counts.Events, s.NrFree,
            Fragmentation.UnusableIndices(s.NrFree), Fragmentation.ExtfragIndices(s.NrFree));
    }

    /// <summary>What the replay did, beside what the real kernel did, and the preferred zone's state at the end. Ends the replay.</summary>
    public ReplayResult Result()
    {
        var final = Snapshot();
        _fallbacks.Dispose();
        var after = _machine.Zones.Select(z => z.Counters()).ToArray();
        long Delta(Func<ZoneCounters, long> pick) => after.Sum(pick) - _before.Sum(pick);
        var buddyByOrder = new long[NrPageOrders];
        for (var order = 0; order < NrPageOrders; order++)
        {
            buddyByOrder[order] = Delta(c => c.BuddyAllocsByOrder[order]);
        }
        var refills = Delta(c => c.Event(VmEvent.PcpRefill));
        var refillPages = Delta(c => c.Event(VmEvent.PcpRefillPages));
        return new ReplayResult(
            _counts.Lines, _counts.Events, _counts.NotEvents, [.. _counts.FirstNotEvents],
            _counts.Allocations, _counts.Frees, _counts.Splits, _counts.StaleFreed, _live.Count,
            new SortedDictionary<string, long>(_counts.Skipped, StringComparer.Ordinal),
            _counts.SimulatedFailuresByOrder,
            new ReplayKernelSide(_counts.TraceZoneLockedRefill, _counts.TraceZoneLockedBuddy, _counts.TracePcpuDrainBlocks, _counts.TraceExtfrag,
                new SortedDictionary<string, long>(_counts.TraceFallbacks, StringComparer.Ordinal)),
            new ReplaySimulatedSide(refills, refillPages, refills == 0 ? 0 : Math.Round((double)refillPages / refills, 1), buddyByOrder,
                Delta(c => c.Event(VmEvent.PcpDrain)), Delta(c => c.Event(VmEvent.PcpDrainPages)),
                Delta(c => c.Event(VmEvent.FallbackClaim)), Delta(c => c.Event(VmEvent.FallbackSteal)),
                new SortedDictionary<string, long>(_counts.SimulatedFallbacks, StringComparer.Ordinal), _counts.SimulatedFallbacksLost,
                Delta(c => c.ZoneLock.Acquisitions), _counts.VmstatIntervals),
            _preferred.Key, final, [.. _timeline, final], _timelineEvery);
    }

    /// <summary>The counters a replay keeps as it goes.</summary>
    private sealed class ReplayCounts
    {
        public long Lines;
        public long Events;
        public long NotEvents;
        public readonly List<string> FirstNotEvents = [];
        public long Allocations;
        public long Frees;
        public long Splits;
        public long StaleFreed;
        public long VmstatIntervals;
        public readonly Dictionary<string, long> Skipped = [];
        public readonly long[] SimulatedFailuresByOrder = new long[NrPageOrders];
        public readonly long[] TraceZoneLockedRefill = new long[NrPageOrders];
        public readonly long[] TraceZoneLockedBuddy = new long[NrPageOrders];
        public long TracePcpuDrainBlocks;
        public long TraceExtfrag;
        public readonly Dictionary<string, long> TraceFallbacks = [];
        public readonly Dictionary<string, long> SimulatedFallbacks = [];
        public long SimulatedFallbacksLost;

        /// <summary>Counts a fallback as "Unmovable from Movable (claim)": the allocation's type, the block's, and whether its pageblock changed owner.</summary>
        public static void Fallback(Dictionary<string, long> counts, int allocMt, int fallbackMt, bool changedOwner)
        {
            static string Name(int mt) => mt is >= 0 and < MigrateTypes.Count ? MigrateTypes.Name((MigrateType)mt) : mt.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var key = $"{Name(allocMt)} from {Name(fallbackMt)} ({(changedOwner ? "claim" : "steal")})";
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }

        public void Skip(string reason) => Skipped[reason] = Skipped.GetValueOrDefault(reason) + 1;
    }
}
