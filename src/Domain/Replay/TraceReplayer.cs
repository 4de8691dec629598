using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Replay;

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
public sealed class TraceReplayer
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
    private char[] _chars = new char[1024];

    // A workload uses a handful of gfp masks: each spelling is one string, read as a mask once.
    private readonly GfpSpellings _gfpSpellings = new();
    private readonly Dictionary<string, GfpFlags?> _gfpMasks = new(StringComparer.Ordinal);
    private const int GfpMasksKept = 256;

    // The simulator's own mm_page_alloc_extfrag events, to count its fallbacks by migratetype as the trace's are.
    private readonly Tracing.TraceListener _fallbacks;

    /// <summary>A simulated block a trace pfn maps to.</summary>
    private readonly record struct Block(Zone Zone, long Pfn, int Order, bool Compound);

    /// <param name="timelinePoints">
    /// The most timeline snapshots kept (the final one beside them): when the timeline reaches it,
    /// every second snapshot is dropped and the interval doubles, so a timeline of any trace stays
    /// this long at most, and its interval is the result's TimelineEvery.
    /// </param>
    public TraceReplayer(Machine machine, Zone preferred, int timelineEvery = 2000, int timelinePoints = DefaultTimelinePoints)
    {
        _machine = machine;
        _preferred = preferred;
        _timelineEvery = Math.Max(1, timelineEvery);
        _timelinePoints = Math.Max(1, timelinePoints);
        _recentFrees = [.. Enumerable.Range(0, machine.Cpus).Select(_ => new Queue<long>())];
        _before = [.. machine.Zones.Select(z => z.Counters())];
        _fallbacks = machine.Tracepoints.Listen(
            new Tracing.TraceFilter(Tracing.TraceFilter.TypeBit(Tracing.TraceEventType.MmPageAllocExtfrag)), capacity: 1 << 16);
    }

    /// <summary>The most timeline snapshots a replay keeps unless told otherwise (Limits:ReplayTimelinePoints).</summary>
    public const int DefaultTimelinePoints = 4096;

    /// <summary>Called with each timeline snapshot as the replay takes it: progress for long traces.</summary>
    public Action<ReplaySnapshot>? OnSnapshot { get; init; }

    /// <summary>Reads one line of a trace.</summary>
    public void Read(string line) => Read(line.AsSpan());

    /// <summary>Reads one line of a trace, as UTF-8 bytes without its '\n' (as <see cref="BoundedLineReader.TryReadLine"/> gives it).</summary>
    public void Read(ReadOnlySpan<byte> utf8Line) => Apply(Parse(utf8Line));

    /// <summary>Reads one line of a trace (without its '\n').</summary>
    public void Read(ReadOnlySpan<char> line) => Apply(Parse(line));

    /// <summary>A line as parsed: its event, or, for one of the first five that are not events, its start quoted.</summary>
    internal readonly record struct ParsedLine(bool IsEvent, KmemRecord Record, string? Quote);

    // Parse touches only _chars, _gfpSpellings and _quoted, Apply everything else: ReplayAsync may run
    // the one on its own thread ahead of the other, in the same order of lines.
    internal ParsedLine Parse(ReadOnlySpan<byte> utf8Line)
    {
        // Decoded into a buffer kept for the next line, not into a string per line: UTF-8 never
        // decodes into more UTF-16 chars than it has bytes, so the buffer only grows for a longer line.
        if (_chars.Length < utf8Line.Length)
        {
            _chars = new char[Math.Max(utf8Line.Length, _chars.Length * 2)];
        }
        return Parse(_chars.AsSpan(0, System.Text.Encoding.UTF8.GetChars(utf8Line, _chars)));
    }

    internal ParsedLine Parse(ReadOnlySpan<char> line)
    {
        if (KmemTraceParser.TryParse(line, _gfpSpellings, out var record))
        {
            return new ParsedLine(true, record, null);
        }
        // The first five non-empty lines that are not events are quoted in the result (200 characters of each).
        if (_quoted < 5 && line.Length > 0)
        {
            _quoted++;
            return new ParsedLine(false, default, new string(line[..Math.Min(line.Length, 200)]));
        }
        return default;
    }

    private int _quoted;

    internal void Apply(in ParsedLine line)
    {
        _counts.Lines++;
        if (!line.IsEvent)
        {
            _counts.NotEvents++;
            if (line.Quote is { } quote)
            {
                _counts.FirstNotEvents.Add(quote);
            }
            return;
        }
        var record = line.Record;
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
        if (GfpMask(record.Gfp ?? "GFP_KERNEL") is not { } gfp)
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

    /// <summary>Gfp.TryParse's mask for the spelling, or null when it has an unknown name; kept for the next allocation with it.</summary>
    private GfpFlags? GfpMask(string spelling)
    {
        if (_gfpMasks.TryGetValue(spelling, out var mask))
        {
            return mask;
        }
        mask = Gfp.TryParse(spelling, out var flags, out _) ? flags : null;
        if (_gfpMasks.Count < GfpMasksKept)
        {
            _gfpMasks.Add(spelling, mask);
        }
        return mask;
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

/// <summary>The preferred zone after <see cref="Events"/> events: buddyinfo and the fragmentation indices per order.</summary>
public sealed record ReplaySnapshot(long Events, long[] Buddyinfo, double[] UnusableIndex, double[] ExtfragIndex);

/// <summary>
/// What the real kernel's own events in the trace say: blocks taken under zone->lock by order (for a
/// pcp refill or not), pcp drains, fallbacks (mm_page_alloc_extfrag) by allocation and block
/// migratetype, claim when the pageblock changed owner and steal when not.
/// </summary>
public sealed record ReplayKernelSide(long[] ZoneLockedRefillBlocksByOrder, long[] ZoneLockedBuddyBlocksByOrder, long PcpuDrainBlocks, long ExtfragEvents,
    IReadOnlyDictionary<string, long> FallbacksByMigratetype);

/// <summary>
/// What the simulator did for the same allocations: pcp refills and their mean size, buddy allocations
/// by order, drains, fallbacks (in total, and by migratetype as its own extfrag tracepoint reports
/// them, with any the listener lost), zone-lock acquisitions, and the vmstat intervals (pcp high
/// decays) the trace's clock ran.
/// </summary>
public sealed record ReplaySimulatedSide(long PcpRefills, long PcpRefillPages, double MeanRefillPages, long[] BuddyAllocationsByOrder,
    long PcpDrains, long PcpDrainPages, long FallbackClaims, long FallbackSteals, IReadOnlyDictionary<string, long> FallbacksByMigratetype,
    long FallbacksLost, long ZoneLockAcquisitions, long VmstatIntervals);

/// <summary>A replay's outcome. <see cref="TimelineEvery"/> is the interval of the timeline's snapshots (before the final one): the one asked for, doubled as often as the timeline reached its limit of points.</summary>
public sealed record ReplayResult(
    long Lines,
    long Events,
    long NotEvents,
    string[] FirstNotEvents,
    long Allocations,
    long Frees,
    long Splits,
    long StaleFreed,
    long LiveAtEnd,
    IReadOnlyDictionary<string, long> Skipped,
    long[] SimulatedFailuresByOrder,
    ReplayKernelSide Kernel,
    ReplaySimulatedSide Simulated,
    string Zone,
    ReplaySnapshot Final,
    ReplaySnapshot[] Timeline,
    long TimelineEvery);

/// <summary>Reading a trace: its lines, from text or gzip.</summary>
public static class TraceInput
{
    /// <summary>
    /// Replays every line the reader gives, then returns the result; cancellable at each read of the
    /// stream. The lines are read as bytes in the reader's buffer, never as a string each; with more
    /// than one processor they are parsed on one thread and simulated on another (<see cref="ReplayPipeline"/>),
    /// with the same outcome.
    /// </summary>
    public static async Task<ReplayResult> ReplayAsync(this TraceReplayer replayer, BoundedLineReader lines, CancellationToken cancellationToken = default)
    {
        if (Environment.ProcessorCount > 1)
        {
            await new ReplayPipeline(replayer, lines).RunAsync(cancellationToken);
            return replayer.Result();
        }
        while (await lines.FillAsync(cancellationToken))
        {
            ReadBuffered(replayer, lines);
        }
        return replayer.Result();
    }

    // Apart from the async method, which may not hold a span across an await.
    private static void ReadBuffered(TraceReplayer replayer, BoundedLineReader lines)
    {
        while (lines.TryReadLine(out var line))
        {
            replayer.Read(line);
        }
    }

    /// <summary>
    /// A reader of the trace in the stream, gunzipped when <paramref name="gzip"/> is set, that reads no
    /// more text than the bounds allow (<see cref="TextBounds.Default"/> when none are given): past them,
    /// <see cref="TextTooLargeException"/>.
    /// </summary>
    public static BoundedLineReader Open(Stream stream, bool gzip, TextBounds? bounds = null) =>
        new(gzip ? new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress) : stream, bounds ?? TextBounds.Default);

    /// <summary>
    /// Why the input a replay read is not a kmem trace, or null when it is (at least one kmem event):
    /// POST /replay's not-a-trace and TraceReplay's exit 3. <paramref name="input"/> names it, as the
    /// sentence reads it ("the body", a file's name).
    /// </summary>
    public static string? NotATrace(ReplayResult result, string input)
    {
        if (result.Events > 0)
        {
            return null;
        }
        if (result.Lines == 0)
        {
            return $"There is no line in {input}, so no kmem event (perf script, ftrace or trace-cmd text).";
        }
        // Binary input quoted as '?' where it has control characters, so the message is safe to print on a terminal.
        var quoted = result.FirstNotEvents.Length == 0 ? ""
            : $" It begins: '{string.Concat(result.FirstNotEvents[0].Select(c => char.IsControl(c) && c != '\t' ? '?' : c))}'.";
        return $"None of {input}'s {result.Lines} lines is a kmem event (perf script, ftrace or trace-cmd text).{quoted}";
    }

    /// <summary>Why gzip input could not be read (the <see cref="InvalidDataException"/> its reading threw): not a trace either.</summary>
    public static string BadGzip(InvalidDataException bad, string input) => $"Bad gzip in {input}: {bad.Message}";

    /// <summary>True when the first bytes are gzip's magic number (1f 8b).</summary>
    public static bool IsGzip(ReadOnlySpan<byte> start) => start.Length >= 2 && start[0] == 0x1f && start[1] == 0x8b;
}
