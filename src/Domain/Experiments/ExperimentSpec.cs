using System.Text.Json.Serialization;
using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Experiments;

/// <summary>The workloads an experiment can run on each fork.</summary>
public enum WorkloadKind
{
    /// <summary>The seed's page_alloc_high_order_test loop: alloc_pages(order), split_page(), free_contig_range().</summary>
    SeedLoop,

    /// <summary>The vmalloc loop: vmalloc() of N pages from the largest blocks it can get, split_page(), vfree() through free_pages_bulk().</summary>
    VmallocLoop,

    /// <summary>LoadGen's "mixed" workload: random orders 0..3, GFP_KERNEL or GFP_HIGHUSER_MOVABLE, a bounded live set, random frees.</summary>
    Mix,

    /// <summary>A real kernel's kmem trace, replayed as /replay does (TraceReplayer).</summary>
    Trace,
}

/// <summary>
/// What every fork runs. <see cref="RangeEvery"/> adds a range user to a mix or a trace: every that
/// many steps, one iteration of the seed's loop at <see cref="RangeOrder"/> (a driver taking and
/// giving back a contiguous range, as CMA and hugetlb users do), freed with the variant's strategy.
/// That is what makes a free strategy matter under other traffic: the pages it frees one by one
/// land on the pcp lists where the traffic's order-0 allocations take them.
/// </summary>
/// <param name="Steps">Loop iterations or mix operations; for a trace, ignored (its lines are the steps).</param>
/// <param name="Order">The seed loop's order (9 by default).</param>
/// <param name="Pages">The vmalloc loop's size in pages (1024 by default).</param>
/// <param name="Trace">The trace's name (<see cref="KnownTraces"/>).</param>
/// <param name="Passes">How many times the trace is read (a trace longer than its recording; 1 by default).</param>
/// <param name="LiveBlocks">The mix's live set (256 by default).</param>
public sealed record WorkloadSpec(
    WorkloadKind Kind,
    string Zone = "Normal",
    int Steps = 10_000,
    int Order = 9,
    int Pages = 1024,
    string? Trace = null,
    int Passes = 1,
    int LiveBlocks = 256,
    int RangeEvery = 0,
    int RangeOrder = 9)
{
    /// <summary>
    /// The trace a trace workload reads: <see cref="Trace"/>'s, one the service holds, unless a
    /// caller in-process gives its own (tools/Experiment's trace file). Never read from or written to JSON.
    /// </summary>
    [JsonIgnore]
    public WorkloadTrace? Source { get; init; }

    /// <summary>The trace this workload reads (null for a workload that reads none, or a name the service does not hold).</summary>
    public WorkloadTrace? TraceToRead() => Source ?? (Trace is not null && KnownTraces.Exists(Trace) ? KnownTraces.Source(Trace) : null);
}

/// <summary>
/// fail_page_alloc's settings for a variant (as its debugfs files; what is left out stays as the
/// machine has it).
/// </summary>
public sealed record FaultSpec(int? Probability = null, long? Interval = null, int? Times = null, int? Space = null, int? MinOrder = null, bool? IgnoreGfpWait = null);

/// <summary>
/// One variant: what it changes on its fork before the workload runs. What it leaves out is the
/// machine's own (a variant that changes nothing runs the machine as it is).
/// </summary>
/// <param name="Strategy">free_contig_range()'s and free_pages_bulk()'s strategy (chunked when left out, today's kernel).</param>
/// <param name="MinFreeKbytes">Written to /proc/sys/vm/min_free_kbytes on the fork (setup_per_zone_wmarks()).</param>
public sealed record VariantSpec(
    string Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] FreeStrategy? Strategy = null, // left out rather than null: JSON Schema 3.0 cannot say a $ref may be null
    long? MinFreeKbytes = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] FaultSpec? FailPageAlloc = null)
{
    /// <summary>The strategy frees run with when the variant names none: the kernel's own since the seed's patch.</summary>
    [JsonIgnore]
    public FreeStrategy StrategyOrDefault => Strategy ?? FreeStrategy.Chunked;
}

/// <summary>
/// The fragmenter's target (as POST .../zones/{zone}/fragment takes it), for an experiment to start
/// from: the workload's zone rebooted with this many free pages, <see cref="UnusableIndex"/> of them
/// in blocks below <see cref="Order"/>, the rest of the zone in use by the system.
/// </summary>
public sealed record FragmentSpec(long FreePages, int Order = 9, double UnusableIndex = 0.9, int Seed = 1);

/// <summary>An experiment: one workload, run on a fork of one machine per variant and repeat.</summary>
/// <param name="Repeat">Runs per variant. Repeat r of every variant runs with seed Seed + r: the variants' runs are paired.</param>
/// <param name="Points">The most timeline samples a run keeps (as a replay's timeline: halved and the interval doubled at the limit).</param>
/// <param name="Fragment">
/// When given, the forks start from the machine's shape rebooted with the workload's zone
/// fragmented (what POST .../fragment would make of the machine), not from its state: a ready-made
/// fragmented machine that leaves the machine itself as it is.
/// </param>
public sealed record ExperimentSpec(WorkloadSpec Workload, IReadOnlyList<VariantSpec> Variants, int Repeat = 1, int Seed = 1, int Points = 200,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] FragmentSpec? Fragment = null)
{
    public const int MaxVariants = 8;
    public const int MaxRepeat = 10;
    public const int MaxPoints = 1000;
    public const int MaxSteps = 1_000_000;
    public const int MaxPasses = 50;
    public const int MaxPages = 1 << 18;
    public const int MaxLiveBlocks = 1 << 16;

    /// <summary>Every problem with the experiment, each naming its field (as JSON paths); none for a valid one.</summary>
    public IReadOnlyList<(string Field, string Problem)> Validate(Allocator.Machine machine)
    {
        var problems = new List<(string, string)>();
        void Check(bool ok, string field, string problem)
        {
            if (!ok)
            {
                problems.Add((field, problem));
            }
        }
        var w = Workload;
        Check(machine.FindZone(w.Zone) is not null, "workload.zone", $"'{w.Zone}' is not one of the machine's zones ({string.Join(", ", machine.Zones.Select(z => z.Key))}).");
        Check(w.Steps is >= 1 and <= MaxSteps, "workload.steps", $"steps must be 1..{MaxSteps}, not {w.Steps}.");
        Check(w.Order is >= 0 and <= PageAllocConstants.MaxPageOrder, "workload.order", $"order must be 0..{PageAllocConstants.MaxPageOrder}, not {w.Order}.");
        Check(w.RangeOrder is >= 0 and <= PageAllocConstants.MaxPageOrder, "workload.rangeOrder", $"rangeOrder must be 0..{PageAllocConstants.MaxPageOrder}, not {w.RangeOrder}.");
        Check(w.RangeEvery is >= 0 and <= MaxSteps, "workload.rangeEvery", $"rangeEvery must be 0 (no range user)..{MaxSteps}, not {w.RangeEvery}.");
        Check(w.RangeEvery == 0 || w.Kind is WorkloadKind.Mix or WorkloadKind.Trace, "workload.rangeEvery", "A range user runs beside a mix or a trace; the loops are range users themselves.");
        Check(w.Pages is >= 1 and <= MaxPages, "workload.pages", $"pages must be 1..{MaxPages}, not {w.Pages}.");
        Check(w.Passes is >= 1 and <= MaxPasses, "workload.passes", $"passes must be 1..{MaxPasses}, not {w.Passes}.");
        Check(w.LiveBlocks is >= 1 and <= MaxLiveBlocks, "workload.liveBlocks", $"liveBlocks must be 1..{MaxLiveBlocks}, not {w.LiveBlocks}.");
        if (w.Kind == WorkloadKind.Trace)
        {
            Check(w.TraceToRead() is not null, "workload.trace",
                $"A trace workload names one of the traces the service holds ({string.Join(", ", KnownTraces.Names)}) or one uploaded for the machine (POST .../experiments/traces), not '{w.Trace}'.");
        }
        if (Fragment is { } target)
        {
            var managed = machine.FindZone(w.Zone)?.ManagedPages ?? 0;
            Check(target.FreePages >= 0 && target.FreePages <= managed, "fragment.freePages", $"freePages must be 0..{managed} (the zone's pages), not {target.FreePages}.");
            Check(target.Order is >= 1 and <= PageAllocConstants.MaxPageOrder, "fragment.order", $"order must be 1..{PageAllocConstants.MaxPageOrder}, not {target.Order}.");
            Check(target.UnusableIndex is >= 0 and <= 1, "fragment.unusableIndex", $"unusableIndex must be 0..1, not {target.UnusableIndex}.");
        }
        Check(Variants.Count is >= 1 and <= MaxVariants, "variants", $"An experiment has 1..{MaxVariants} variants, not {Variants.Count}.");
        Check(Repeat is >= 1 and <= MaxRepeat, "repeat", $"repeat must be 1..{MaxRepeat}, not {Repeat}.");
        Check(Points is >= 2 and <= MaxPoints, "points", $"points must be 2..{MaxPoints}, not {Points}.");
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Variants.Count; i++)
        {
            var v = Variants[i];
            Check(!string.IsNullOrWhiteSpace(v.Name) && v.Name.Length <= 64, $"variants[{i}].name", "A variant's name is 1..64 characters.");
            Check(names.Add(v.Name ?? ""), $"variants[{i}].name", $"Two variants are named '{v.Name}'.");
            if (v.MinFreeKbytes is { } kbytes)
            {
                var config = machine.Config;
                config.MinFreeKbytes = kbytes;
                foreach (var problem in config.Validate())
                {
                    problems.Add(($"variants[{i}].minFreeKbytes", problem));
                }
            }
            if (v.FailPageAlloc is { } f)
            {
                Check(f.Probability is null or (>= 0 and <= 100), $"variants[{i}].failPageAlloc.probability", "probability is 0..100.");
                Check(f.Interval is null or >= 1, $"variants[{i}].failPageAlloc.interval", "interval is at least 1.");
                Check(f.Times is null or >= -1, $"variants[{i}].failPageAlloc.times", "times is -1 (no limit) or more.");
                Check(f.Space is null or >= 0, $"variants[{i}].failPageAlloc.space", "space is not negative.");
                Check(f.MinOrder is null or (>= 0 and <= PageAllocConstants.MaxPageOrder), $"variants[{i}].failPageAlloc.minOrder", $"minOrder is 0..{PageAllocConstants.MaxPageOrder}.");
            }
        }
        return problems;
    }

    /// <summary>Runs in all: every variant, every repeat.</summary>
    [JsonIgnore]
    public int Runs => Variants.Count * Repeat;
}
