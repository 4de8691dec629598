using System.Globalization;
using HdrHistogram;
using PageAlloc.Client;

namespace PageAlloc.LoadGen;

/// <summary>
/// The run's report: what was run against what, rates and latency percentiles per operation, errors,
/// the server's view, the leak check and the thresholds' verdicts.
/// </summary>
public sealed record LoadReport(
    string Target,
    string Workload,
    string Strategy,
    string Zone,
    int Concurrency,
    double? Rate,
    string Limit,
    double Seconds,
    long Requests,
    double RequestsPerSecond,
    long Errors,
    long DroppedSteps,
    IReadOnlyList<OperationStats> Operations,
    IReadOnlyDictionary<string, long> ErrorsByStatus,
    ServerDelta? Server,
    long PagesAllocated,
    long PagesFreed,
    bool EveryPageFreed,
    bool Interrupted,
    IReadOnlyList<ThresholdResult> Thresholds,
    IReadOnlyList<MachineReport>? Machines = null)
{
    public bool ThresholdsPassed => Thresholds.All(t => t.Passed);

    /// <summary>0 passed, 3 pages left allocated, 4 a threshold crossed, 130 interrupted (otherwise clean).</summary>
    public int ExitCode => !EveryPageFreed ? 3 : !ThresholdsPassed ? 4 : Interrupted ? 130 : 0;

    internal static LoadReport From(LoadOptions o, IReadOnlyList<Recorder> recorders, RunCounters counters, TimeSpan elapsed, bool interrupted, ServerDelta? server,
        IReadOnlyList<MachineReport>? machines = null)
    {
        var operations = recorders.SelectMany(r => r.Latency).GroupBy(p => p.Key, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => OperationStats.From(g.Key, Merge(g.Select(p => p.Value)), elapsed)).ToList();
        var errors = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (key, count) in recorders.SelectMany(r => r.Errors))
        {
            errors[key] = errors.GetValueOrDefault(key) + count;
        }
        var requests = counters.Requests;
        var allocated = recorders.Sum(r => r.AllocatedPages);
        var freed = recorders.Sum(r => r.FreedPages);
        var errorRate = requests == 0 ? 0 : (double)counters.Errors / requests;
        List<ThresholdResult> thresholds = [new("max-error-rate", o.MaxErrorRate, Math.Round(errorRate, 4), errorRate <= o.MaxErrorRate)];
        if (o.P99Ms is { } p99Limit)
        {
            var worst = operations.MaxBy(op => op.P99Ms);
            var p99 = worst?.P99Ms ?? 0;
            thresholds.Add(new("p99-ms", p99Limit, p99, p99 <= p99Limit, worst?.Operation));
        }
        return new LoadReport(
            o.Url.ToString(), o.Workload, o.StrategyName, o.Zone, o.Concurrency, o.Rate,
            o.Requests is { } budget ? $"{budget} requests" : FormattableString.Invariant($"{o.Duration.TotalSeconds:0.###} s"),
            Math.Round(elapsed.TotalSeconds, 3), requests, Math.Round(requests / elapsed.TotalSeconds, 1), counters.Errors, counters.Dropped,
            operations, errors, server, allocated, freed, allocated == freed, interrupted, thresholds, machines);
    }

    private static LongHistogram Merge(IEnumerable<LongHistogram> histograms)
    {
        LongHistogram? merged = null;
        foreach (var h in histograms)
        {
            if (merged is null)
            {
                merged = (LongHistogram)h.Copy();
            }
            else
            {
                merged.Add(h);
            }
        }
        return merged!;
    }

    public string ToText()
    {
        var c = CultureInfo.InvariantCulture;
        var model = Rate is { } rate ? string.Create(c, $"open model, {rate:0.##} steps/s, at most {Concurrency} in flight") : $"{Concurrency} workers";
        var lines = new List<string>
        {
            $"target {Target}: workload {Workload} (strategy {Strategy}) on zone {Zone}, {model}, for {Limit}",
            string.Create(c, $"ran {Seconds:F1} s{(Interrupted ? " (interrupted)" : "")}: {Requests} requests, {RequestsPerSecond:F0} req/s, {Errors} failed")
                + (Rate is null ? "" : string.Create(c, $", {DroppedSteps} steps dropped (every worker busy)")),
            "operation              count     req/s    p50 ms    p90 ms    p95 ms    p99 ms  p99.9 ms    max ms",
        };
        lines.AddRange(Operations.Select(o => string.Create(c,
            $"{o.Operation,-18} {o.Count,9} {o.PerSecond,9:F0} {o.P50Ms,9:F3} {o.P90Ms,9:F3} {o.P95Ms,9:F3} {o.P99Ms,9:F3} {o.P999Ms,9:F3} {o.MaxMs,9:F3}")));
        lines.Add(ErrorsByStatus.Count == 0 ? "errors: none" : "errors: " + string.Join(", ", ErrorsByStatus.Select(e => $"{e.Key}: {e.Value}")));
        if (Server is { } s)
        {
            lines.Add(string.Create(c, $"server: pgalloc +{s.PagesAllocated}, pgfree +{s.PagesFreed}, allocated pages {s.AllocatedPagesChange:+0;-0;0}, "
                + $"zone lock {s.ZoneLockAcquisitions} acquisitions, {s.ZoneLockContended} contended ({s.ZoneLockWaitNs / 1e6:F1} ms waiting), {s.PcpDrains} pcp drains"));
        }
        foreach (var m in Machines ?? [])
        {
            lines.Add(string.Create(c, $"machine {m.Name}: {m.Requests} requests, {m.Errors} failed, {m.PagesAllocated} pages allocated, {m.PagesFreed} freed")
                + (m.Server is { } ms ? string.Create(c, $"; server: pgalloc +{ms.PagesAllocated}, allocated pages {ms.AllocatedPagesChange:+0;-0;0}, zone lock {ms.ZoneLockContended} contended") : ""));
        }
        lines.Add(EveryPageFreed
            ? string.Create(c, $"leak check: every page allocated was freed ({PagesAllocated} pages).")
            : string.Create(c, $"leak check: FAILED: {PagesAllocated} pages allocated, {PagesFreed} freed."));
        lines.AddRange(Thresholds.Select(t => string.Create(c, $"threshold {t.Name} <= {t.Limit}: {(t.Passed ? "passed" : "CROSSED")} ({Observed(t)})")));
        return string.Join('\n', lines);
    }

    /// <summary>What a threshold was held against: the value, or for p99-ms the operation it is of (and every other one over).</summary>
    private string Observed(ThresholdResult t)
    {
        var c = CultureInfo.InvariantCulture;
        if (t.Operation is null)
        {
            return t.Observed.ToString(c);
        }
        var worst = string.Create(c, $"{t.Operation} p99 {t.Observed:0.000} ms");
        if (t.Passed)
        {
            return "worst: " + worst;
        }
        var others = Operations.Where(o => o.Operation != t.Operation && o.P99Ms > t.Limit).OrderByDescending(o => o.P99Ms)
            .Select(o => string.Create(c, $"{o.Operation} p99 {o.P99Ms:0.000} ms")).ToList();
        return others.Count == 0 ? worst : worst + "; also over: " + string.Join(", ", others);
    }
}

/// <summary>One operation's count, rate and latency percentiles in milliseconds (merged over workers).</summary>
public sealed record OperationStats(string Operation, long Count, double PerSecond, double P50Ms, double P90Ms, double P95Ms, double P99Ms, double P999Ms, double MaxMs)
{
    internal static OperationStats From(string operation, LongHistogram h, TimeSpan elapsed)
    {
        double Ms(long microseconds) => Math.Round(microseconds / 1000.0, 3);
        return new(operation, h.TotalCount, Math.Round(h.TotalCount / elapsed.TotalSeconds, 1),
            Ms(h.GetValueAtPercentile(50)), Ms(h.GetValueAtPercentile(90)), Ms(h.GetValueAtPercentile(95)),
            Ms(h.GetValueAtPercentile(99)), Ms(h.GetValueAtPercentile(99.9)), Ms(h.GetMaxValue()));
    }
}

/// <summary>A threshold, what the run measured against it, and whether it held.</summary>
/// <param name="Operation">p99-ms: the operation with the highest p99, the one <paramref name="Observed"/> is of.</param>
public sealed record ThresholdResult(string Name, double Limit, double Observed, bool Passed, string? Operation = null);

/// <summary>One machine's share of a run over several (--machines N): its workers' requests and pages, and its server counters.</summary>
public sealed record MachineReport(string Name, long Requests, long Errors, long PagesAllocated, long PagesFreed, ServerDelta? Server);

/// <summary>What the server's /stats say happened during the run, summed over zones (and machines).</summary>
public sealed record ServerDelta(long PagesAllocated, long PagesFreed, long AllocatedPagesChange, long ZoneLockAcquisitions, long ZoneLockContended, long ZoneLockWaitNs, long PcpDrains)
{
    /// <summary>The machines' deltas added up; null when any is unknown.</summary>
    public static ServerDelta? Sum(IEnumerable<ServerDelta?> deltas)
    {
        var all = deltas.ToList();
        return all.Any(d => d is null) ? null : all.Aggregate(new ServerDelta(0, 0, 0, 0, 0, 0, 0), (a, d) => new ServerDelta(
            a.PagesAllocated + d!.PagesAllocated, a.PagesFreed + d.PagesFreed, a.AllocatedPagesChange + d.AllocatedPagesChange,
            a.ZoneLockAcquisitions + d.ZoneLockAcquisitions, a.ZoneLockContended + d.ZoneLockContended, a.ZoneLockWaitNs + d.ZoneLockWaitNs, a.PcpDrains + d.PcpDrains));
    }

    public static ServerDelta? Between(MachineStatsResponse? before, MachineStatsResponse? after)
    {
        if (before is null || after is null)
        {
            return null;
        }
        long Delta(Func<ZoneStatsResponse, long> pick) => after.Zones.Sum(pick) - before.Zones.Sum(pick);
        // The zone's own lock in its lock list, found by its kernel name ("Normal zone->lock").
        static LockStats ZoneLock(ZoneStatsResponse zone) => zone.Locks.First(l => l.Name.EndsWith(" zone->lock", StringComparison.Ordinal));
        return new ServerDelta(
            Delta(z => z.Vmstat["pgalloc"]),
            Delta(z => z.Vmstat["pgfree"]),
            Delta(z => z.AllocatedPages),
            Delta(z => ZoneLock(z).Acquisitions),
            Delta(z => ZoneLock(z).Contended),
            Delta(z => ZoneLock(z).WaitNs),
            Delta(z => z.Vmstat["pcp_drain"]));
    }
}
