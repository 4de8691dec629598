using PageAlloc.Domain.Allocator;

namespace PageAlloc.Domain.Experiments;

/// <summary>
/// Runs an experiment: every variant, every repeat, each on its own fork of one machine, up to
/// <c>parallelism</c> runs at once. Each run forks the template (which nothing else changes while
/// the experiment runs: the caller forked it from the machine under the machine's gate), applies
/// its variant, and runs the workload on one thread with seed Seed + repeat, so a run's timeline
/// depends only on the machine, the variant and the seed. A cancelled token stops every run
/// within 256 steps (OperationCanceledException); the forks are dropped with the runs.
/// </summary>
public static class ExperimentRunner
{
    /// <param name="template">The machine as the experiment found it; forked, never changed.</param>
    /// <param name="progress">Called with steps done (a count to add), from the runs' threads.</param>
    /// <remarks>
    /// The runs go on threads of their own, not the thread pool's: an experiment keeps its cores busy
    /// for minutes, and a service's requests must not queue behind it for pool threads.
    /// </remarks>
    public static ExperimentResult Run(Machine template, ExperimentSpec spec, int parallelism, Action<long>? progress = null, CancellationToken cancellationToken = default)
    {
        if (spec.Fragment is { } fragment)
        {
            var fragmented = Fragmented(template.Config, spec.Workload.Zone, fragment);
            template = fragmented.IsSuccess ? fragmented.Value : throw new ArgumentException(fragmented.Error!.Detail, nameof(spec));
        }
        var runs = new RunResult[spec.Runs];
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var next = -1;
        Exception? failure = null;
        void Worker()
        {
            int index;
            while (!stop.IsCancellationRequested && (index = Interlocked.Increment(ref next)) < spec.Runs)
            {
                try
                {
                    var repeat = index / spec.Variants.Count;
                    runs[index] = RunOne(template, spec, spec.Variants[index % spec.Variants.Count], repeat, progress, stop.Token);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, e, null);
                    stop.Cancel(); // one run failed or was cancelled: the others stop too
                }
            }
        }
        var threads = Enumerable.Range(0, Math.Clamp(parallelism, 1, spec.Runs))
            .Select(i => new Thread(Worker) { IsBackground = true, Name = $"experiment run {i}" })
            .ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The experiment was cancelled.", failure, cancellationToken);
        }
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
        var byVariant = spec.Variants
            .Select((v, i) => new VariantRuns(v.Name, v, [.. Enumerable.Range(0, spec.Repeat).Select(r => runs[(r * spec.Variants.Count) + i])]))
            .ToList();
        return new ExperimentResult(spec, byVariant, ExperimentSummary.Of(spec, byVariant));
    }

    /// <summary>
    /// What POST .../zones/{zone}/fragment makes of a machine: its shape booted afresh, the zone given
    /// the fragmenter's free lists (Fragmenter.Target, Zone.ImportFreeLists).
    /// </summary>
    /// <remarks>A caller that wants the refusal before it starts (the service, for a 400) calls this first and runs the spec without its fragment on the result.</remarks>
    public static Model.PageResult<Machine> Fragmented(Model.MachineConfig config, string zoneName, FragmentSpec fragment)
    {
        var machine = new Machine(config);
        var zone = machine.FindZone(zoneName)!;
        var counts = Import.Fragmenter.Target(zone.Key, fragment.FreePages, fragment.Order, fragment.UnusableIndex, fragment.Seed);
        if (counts is null)
        {
            return new Model.PageError(Model.PageErrorKind.ImportDoesNotFit, $"fragment: no free lists give {fragment.FreePages} pages with unusable_index {fragment.UnusableIndex} at order {fragment.Order}.");
        }
        return zone.ImportFreeLists(counts, fragment.Seed) is { } error ? error : machine;
    }

    /// <summary>One run: fork, variant, workload.</summary>
    public static RunResult RunOne(Machine template, ExperimentSpec spec, VariantSpec variant, int repeat, Action<long>? progress, CancellationToken cancellationToken)
    {
        var fork = template.Fork();
        Apply(fork, variant);
        var seed = unchecked(spec.Seed + repeat);
        var run = new ExperimentRun(fork, fork.FindZone(spec.Workload.Zone)!, variant, seed, spec.Points, cancellationToken, progress);
        Workloads.Run(run, spec.Workload);
        var timeline = run.End();
        var elapsed = timeline[^1].ElapsedNs;
        return new RunResult(repeat, seed, run.Steps, run.Steps == 0 ? 0 : (double)elapsed / run.Steps, timeline);
    }

    /// <summary>What the variant changes on its fork, before the workload's first step (checked beforehand: <see cref="ExperimentSpec.Validate"/>).</summary>
    public static void Apply(Machine fork, VariantSpec variant)
    {
        if (variant.MinFreeKbytes is { } kbytes && fork.SetMinFreeKbytes(kbytes) is { Count: > 0 } problems)
        {
            throw new ArgumentException(string.Join(" ", problems), nameof(variant));
        }
        if (variant.FailPageAlloc is { } f)
        {
            var fail = fork.FailPageAlloc;
            fail.Probability = f.Probability ?? fail.Probability;
            fail.Interval = f.Interval ?? fail.Interval;
            fail.Times = f.Times ?? fail.Times;
            fail.Space = f.Space ?? fail.Space;
            fail.MinOrder = f.MinOrder ?? fail.MinOrder;
            fail.IgnoreGfpWait = f.IgnoreGfpWait ?? fail.IgnoreGfpWait;
        }
    }
}

/// <summary>One run's outcome: its seed, steps, mean time per step, and timeline.</summary>
public sealed record RunResult(int Repeat, int Seed, long Steps, double NsPerStep, IReadOnlyList<ExperimentSample> Timeline);

/// <summary>A variant's runs, repeat 0 first.</summary>
public sealed record VariantRuns(string Variant, VariantSpec Spec, IReadOnlyList<RunResult> Runs);

/// <summary>What an experiment gives: every run's timeline, by variant, and the summary side by side.</summary>
public sealed record ExperimentResult(ExperimentSpec Spec, IReadOnlyList<VariantRuns> Variants, IReadOnlyList<MeasureSummary> Summary);
