using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using PageAlloc.Domain.Experiments;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Contracts;

/// <summary>POST /machines/{machine}/experiments: one workload, run on a fork of the machine per variant and repeat.</summary>
public sealed record ExperimentRequest(
    [property: Required, Description("What every fork runs.")] ExperimentWorkload? Workload,
    [property: Required, Description("1..8 variants, each run on forks of its own; the first is the baseline the summary's differences are against.")] List<ExperimentVariant>? Variants,
    [property: Description("Runs per variant, 1..10 (default 1). Repeat r of every variant runs with seed + r, so the variants' runs are paired.")] int? Repeat = null,
    [property: Description("Seed of the mix's choices (default 1).")] int? Seed = null,
    [property: Description("The most timeline samples a run keeps, 2..1000 (default 200): at the limit every second sample is dropped and the interval doubles.")] int? Points = null,
    [property: Description("Start the forks from the machine's shape rebooted with the workload's zone fragmented, as POST .../zones/{zone}/fragment would leave it, instead of from the machine's state (which stays as it is).")] ExperimentFragment? Fragment = null)
{
    public ExperimentSpec ToSpec() => new(
        Workload!.ToSpec(),
        [.. Variants!.Select((v, i) => v.ToSpec(i))],
        Repeat ?? 1,
        Seed ?? 1,
        Points ?? 200,
        Fragment is { } f ? new FragmentSpec(f.FreePages!.Value, f.Order ?? 9, f.UnusableIndex ?? 0.9, f.Seed ?? 1) : null);
}

/// <summary>The fragmenter's target for an experiment's start (as POST .../zones/{zone}/fragment takes it).</summary>
public sealed record ExperimentFragment(
    [property: Required, Range(0, long.MaxValue), Description("Free pages the zone starts with.")] long? FreePages,
    [property: Range(1, PageAllocConstants.MaxPageOrder), Description("The order whose unusable_index is set (default 9).")] int? Order = null,
    [property: Range(0.0, 1.0), Description("unusable_index at that order (default 0.9).")] double? UnusableIndex = null,
    [property: Description("Seed of the layout (default 1).")] int? Seed = null);

/// <summary>The workload of an experiment.</summary>
public sealed record ExperimentWorkload(
    [property: Required, Description("seed-loop: the seed's alloc_pages + split_page + free_contig_range loop; vmalloc-loop: vmalloc of `pages` from the largest blocks, vfree through free_pages_bulk; mix: LoadGen's mixed workload (orders 0..3, a bounded live set); trace: a real kernel kmem trace replayed as POST /replay does.")] WorkloadKind? Kind,
    [property: Description("The zone allocations prefer and whose free lists are sampled (default Normal).")] string? Zone = null,
    [property: Description("Loop iterations or mix operations, 1..1000000 (default 10000); a trace's steps are its lines.")] int? Steps = null,
    [property: Description("The seed loop's order (default 9).")] int? Order = null,
    [property: Description("The vmalloc loop's size in pages, 1..262144 (default 1024).")] int? Pages = null,
    [property: Description("The trace, by name: git-clone-tar (a real machine cloning and tarring a git repository, Linux 6.18, 4,196 kmem events).")] string? Trace = null,
    [property: Description("How many times the trace is read, 1..50 (default 1).")] int? Passes = null,
    [property: Description("The mix's live set in blocks (default 256).")] int? LiveBlocks = null,
    [property: Description("With a mix or a trace: every this many steps a range user runs one iteration of the seed loop at rangeOrder, freed with the variant's strategy (0, the default: none).")] int? RangeEvery = null,
    [property: Description("The range user's order (default 9).")] int? RangeOrder = null)
{
    public WorkloadSpec ToSpec() => new(
        Kind!.Value,
        Zone ?? "Normal",
        Steps ?? 10_000,
        Order ?? 9,
        Pages ?? 1024,
        Trace,
        Passes ?? 1,
        LiveBlocks ?? 256,
        RangeEvery ?? 0,
        RangeOrder ?? 9);
}

/// <summary>One variant: what it changes on its forks before the workload runs; what it leaves out is the machine's own.</summary>
public sealed record ExperimentVariant(
    [property: Description("The variant's name in the results (default: variant-N).")] string? Name = null,
    [property: Description("The free strategy of free_contig_range and free_pages_bulk (default chunked, the kernel's since the seed's patch).")] FreeStrategy? Strategy = null,
    [property: Description("Written to /proc/sys/vm/min_free_kbytes on the fork: new watermarks and pcp limits (setup_per_zone_wmarks()).")] long? MinFreeKbytes = null,
    [property: Description("fail_page_alloc's settings on the fork (what is left out stays as the machine has it: as in the kernel, times 1 and ignore-gfp-wait on until set, so GFP_KERNEL is left alone).")] ExperimentFaults? FailPageAlloc = null)
{
    public VariantSpec ToSpec(int index) => new(
        Name ?? $"variant-{index}",
        Strategy,
        MinFreeKbytes,
        FailPageAlloc is { } f ? new FaultSpec(f.Probability, f.Interval, f.Times, f.Space, f.MinOrder, f.IgnoreGfpWait) : null);
}

/// <summary>fail_page_alloc's debugfs files, for a variant.</summary>
public sealed record ExperimentFaults(
    [property: Description("probability: percent of eligible allocations to fail.")] int? Probability = null,
    [property: Description("interval: only every interval-th eligible allocation may fail.")] long? Interval = null,
    [property: Description("times: how many failures may be injected; -1 for no limit.")] int? Times = null,
    [property: Description("space: pages that may be allocated before failures start.")] int? Space = null,
    [property: Description("min-order: allocations below this order are never failed.")] int? MinOrder = null,
    [property: Description("ignore-gfp-wait: leave allocations that may sleep alone.")] bool? IgnoreGfpWait = null);

/// <summary>Where an experiment is: running, done, cancelled (by DELETE, a timeout, or the service stopping) or failed.</summary>
public enum ExperimentState
{
    Running,
    Done,
    Cancelled,
    Failed,
}

/// <summary>Steps done of all runs' steps.</summary>
public sealed record ExperimentProgress(long DoneSteps, long TotalSteps, double Fraction);

/// <summary>An experiment as a resource: what it runs, where it is, and (once done) what it found.</summary>
public sealed record ExperimentResponse(
    string Id,
    string Machine,
    [property: Description("The experiment itself: GET for its state and result, DELETE to cancel and delete it.")] string Href,
    ExperimentState State,
    [property: Description("Why it was cancelled or failed; null otherwise.")] string? Reason,
    DateTimeOffset CreatedAt,
    DateTimeOffset? EndedAt,
    ExperimentProgress Progress,
    [property: Description("Runs at once (forks alive at once, beside the template forked from the machine): Limits:ExperimentParallelism, fewer when Limits:ExperimentMemoryBytes holds fewer forks.")] int Parallelism,
    [property: Description("The experiment as run, every default filled in.")] ExperimentSpec Spec,
    [property: Description("Each measure of each variant over its repeats, with the paired differences from the first variant; null until done.")] IReadOnlyList<MeasureSummary>? Summary,
    [property: Description("Every run's timeline, by variant; null until done, or when asked for without (timelines=false).")] IReadOnlyList<VariantRuns>? Variants);

/// <summary>GET /machines/{machine}/experiments: the machine's experiments, newest first, without their results.</summary>
public sealed record ExperimentListResponse(IReadOnlyList<ExperimentResponse> Experiments, [property: Description("Limits:ExperimentsKept: the most kept at once; the oldest finished one makes way for a new one.")] int Kept);

/// <summary>A trace an experiment can replay: one the service holds, or one uploaded for the machine.</summary>
public sealed record ExperimentTraceResponse(
    [property: Description("What workload.trace names.")] string Name,
    [property: Description("built-in (the repository's, in every service) or uploaded (POST .../experiments/traces, this machine's).")] string Kind,
    long Lines,
    [property: Description("Lines that are kmem events.")] long Events,
    [property: Description("The bytes kept (as sent: gzip or text); 0 for a built-in trace.")] long Bytes);

/// <summary>GET .../experiments/traces: every trace the machine's experiments can replay.</summary>
public sealed record ExperimentTraceListResponse(IReadOnlyList<ExperimentTraceResponse> Traces, [property: Description("Limits:ExperimentTraces: the most uploaded traces a silo keeps; the oldest makes way.")] int Kept);
