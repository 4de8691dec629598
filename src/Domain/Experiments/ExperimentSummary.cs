using System.Globalization;
using System.Text;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Experiments;

/// <summary>
/// One measure of one variant over its repeats: median, min and max, and against the first variant
/// (the baseline) the median, min and max of the paired differences (repeat r against the
/// baseline's repeat r, which ran with the same seed). The baseline's own differences are 0.
/// </summary>
public sealed record MeasureSummary(string Measure, string Variant, double Median, double Min, double Max, double DifferenceMedian, double DifferenceMin, double DifferenceMax);

/// <summary>The measures an experiment summarises, each read from one run, and the CSV of the timelines.</summary>
public static class ExperimentSummary
{
    /// <summary>The order the summary's high-order measures are of: the loop's, the range user's, or HPAGE_PMD_ORDER.</summary>
    public static int SummaryOrder(WorkloadSpec w) =>
        w.Kind == WorkloadKind.SeedLoop ? w.Order : w.RangeEvery > 0 ? w.RangeOrder : HpagePmdOrder;

    /// <summary>Free blocks of at least <paramref name="order"/>, counted in blocks of that order.</summary>
    public static long BlocksOfOrder(long[] nrFree, int order)
    {
        long blocks = 0;
        for (var o = order; o < nrFree.Length; o++)
        {
            blocks += nrFree[o] << (o - order);
        }
        return blocks;
    }

    /// <summary>The measures, by name: what each reads from a run.</summary>
    public static IReadOnlyList<(string Name, Func<RunResult, double> Read)> Measures(int order) =>
    [
        ($"free_blocks_order{order}_final", r => BlocksOfOrder(r.Timeline[^1].FreeBlocksByOrder, order)),
        ($"free_blocks_order{order}_mean", r => r.Timeline.Average(s => (double)BlocksOfOrder(s.FreeBlocksByOrder, order))),
        ($"unusable_index_order{order}_mean", r => r.Timeline.Average(s => s.UnusableIndex[order])),
        ($"extfrag_index_order{order}_final", r => r.Timeline[^1].ExtfragIndex[order]),
        ("free_pages_final", r => r.Timeline[^1].FreePages),
        ("high_order_failures", r => r.Timeline[^1].HighOrderFailures),
        ("high_order_success_rate", r => r.Timeline[^1].HighOrderAttempts == 0 ? 1 : 1 - ((double)r.Timeline[^1].HighOrderFailures / r.Timeline[^1].HighOrderAttempts)),
        ("alloc_failures", r => r.Timeline[^1].AllocFailures),
        ("pcp_refills", r => r.Timeline[^1].PcpRefills),
        ("pcp_drains", r => r.Timeline[^1].PcpDrains),
        ("zone_lock_acquisitions", r => r.Timeline[^1].ZoneLockAcquisitions),
        ("zone_lock_contended", r => r.Timeline[^1].ZoneLockContended),
        ("fallbacks", r => r.Timeline[^1].Fallbacks),
        ("ns_per_step", r => r.NsPerStep),
    ];

    public static IReadOnlyList<MeasureSummary> Of(ExperimentSpec spec, IReadOnlyList<VariantRuns> variants)
    {
        var summary = new List<MeasureSummary>();
        var baseline = variants[0];
        foreach (var (name, read) in Measures(SummaryOrder(spec.Workload)))
        {
            foreach (var v in variants)
            {
                var values = v.Runs.Select(read).ToList();
                var differences = v.Runs.Select((r, i) => read(r) - read(baseline.Runs[i])).ToList();
                summary.Add(new MeasureSummary(name, v.Variant, Median(values), values.Min(), values.Max(),
                    Median(differences), differences.Min(), differences.Max()));
            }
        }
        return summary;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>The CSV header of <see cref="TimelineCsv"/>.</summary>
    public static string CsvHeader { get; } = "variant,repeat,step,free_pages,pcp_pages,"
        + string.Join(",", Enumerable.Range(0, NrPageOrders).Select(o => $"free_blocks_{o}")) + ","
        + string.Join(",", Enumerable.Range(0, NrPageOrders).Select(o => $"unusable_index_{o}")) + ","
        + string.Join(",", Enumerable.Range(0, NrPageOrders).Select(o => $"extfrag_index_{o}")) + ","
        + "high_order_attempts,high_order_failures,alloc_failures,pcp_refills,pcp_drains,zone_lock_acquisitions,zone_lock_contended,fallbacks,elapsed_ns";

    /// <summary>Every run's timeline, one row per sample (RFC 4180; a variant's name is quoted when it needs it).</summary>
    public static string TimelineCsv(ExperimentResult result)
    {
        var c = CultureInfo.InvariantCulture;
        var csv = new StringBuilder(CsvHeader).Append("\r\n");
        foreach (var v in result.Variants)
        {
            var name = Quote(v.Variant);
            foreach (var run in v.Runs)
            {
                foreach (var s in run.Timeline)
                {
                    csv.Append(c, $"{name},{run.Repeat},{s.Step},{s.FreePages},{s.PcpPages},")
                        .AppendJoin(',', s.FreeBlocksByOrder).Append(',')
                        .AppendJoin(',', s.UnusableIndex.Select(x => x.ToString("0.###", c))).Append(',')
                        .AppendJoin(',', s.ExtfragIndex.Select(x => x.ToString("0.###", c))).Append(',')
                        .Append(c, $"{s.HighOrderAttempts},{s.HighOrderFailures},{s.AllocFailures},{s.PcpRefills},{s.PcpDrains},")
                        .Append(c, $"{s.ZoneLockAcquisitions},{s.ZoneLockContended},{s.Fallbacks},{s.ElapsedNs}\r\n");
                }
            }
        }
        return csv.ToString();
    }

    private static string Quote(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") < 0 ? field : "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
