using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Experiments;
using PageAlloc.Domain.Import;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>Experiments: variants on forks of one machine differ only in what the variant changes.</summary>
public class ExperimentTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The default machine with Normal fragmented: a quarter free, 90% of it in blocks below order 9.</summary>
    private static Machine Fragmented()
    {
        var machine = new Machine(MachineConfig.Default());
        var normal = machine.FindZone("Normal")!;
        Assert.Null(normal.ImportFreeLists(Fragmenter.Target("Normal", normal.ManagedPages / 4, 9, 0.9, 1)!, 1));
        return machine;
    }

    public static TheoryData<WorkloadSpec> EveryWorkload() =>
    [
        new WorkloadSpec(WorkloadKind.SeedLoop, Steps: 300),
        new WorkloadSpec(WorkloadKind.VmallocLoop, Steps: 40, Pages: 700),
        new WorkloadSpec(WorkloadKind.Mix, Steps: 3000, RangeEvery: 40),
        new WorkloadSpec(WorkloadKind.Trace, Trace: KnownTraces.GitCloneTar, RangeEvery: 100),
    ];

    [Theory]
    [MemberData(nameof(EveryWorkload))]
    public void AVariantThatChangesNothing_GivesTheSameTimeline_AsTheMachineItself(WorkloadSpec workload)
    {
        var machine = Fragmented();
        var spec = new ExperimentSpec(workload, [new("as-is"), new("as-is-too"), new("chunked-named", FreeStrategy.Chunked)], Repeat: 2, Points: 50);
        var result = ExperimentRunner.Run(machine, spec, parallelism: 2, cancellationToken: Ct);
        var runs = result.Variants.Select(v => v.Runs).ToList();
        for (var repeat = 0; repeat < 2; repeat++)
        {
            var first = runs[0][repeat].Timeline;
            Assert.True(first.Count > 2, $"{first.Count} samples");
            foreach (var other in runs.Skip(1).Select(r => r[repeat].Timeline))
            {
                Assert.Equal(first.Count, other.Count);
                for (var i = 0; i < first.Count; i++)
                {
                    Assert.True(first[i].Untimed().SameAs(other[i].Untimed()), $"sample {i} (step {first[i].Step}) differs");
                }
            }
        }
        var diff = result.Summary.Where(s => s.Measure != "ns_per_step").ToList();
        Assert.All(diff, s => Assert.Equal(0, s.DifferenceMedian));
    }

    [Fact]
    public void TheMachineExperimentedOn_IsNotChanged()
    {
        var machine = Fragmented();
        var before = machine.Fingerprint();
        var spec = new ExperimentSpec(new(WorkloadKind.Mix, Steps: 2000, RangeEvery: 20),
            [new("per-page", FreeStrategy.PerPage), new("low-watermarks", MinFreeKbytes: 1024), new("faults", FailPageAlloc: new(Probability: 50))]);
        ExperimentRunner.Run(machine, spec, parallelism: 2, cancellationToken: Ct);
        Assert.Equal(before, machine.Fingerprint());
        machine.AssertConsistent();
    }

    [Fact]
    public void TheSeedClaim_OnAFragmentedMachineUnderARealTrace_ChunkedKeepsOrder9BlocksAvailable_PerPageDoesNot()
    {
        var spec = new ExperimentSpec(new(WorkloadKind.Trace, Trace: KnownTraces.GitCloneTar, Passes: 2, RangeEvery: 50),
            [new("per-page", FreeStrategy.PerPage), new("chunked", FreeStrategy.Chunked)]);
        var result = ExperimentRunner.Run(Fragmented(), spec, parallelism: 2, cancellationToken: Ct);
        double Final(string measure, string variant) => result.Summary.Single(s => s.Measure == measure && s.Variant == variant).Median;
        // The fragmenter leaves 49 order-9 blocks. Chunked frees each range user's block back whole;
        // per-page frees it a page at a time onto the pcp lists, where the trace's order-0
        // allocations take its pages, and the range user has to break up another free block.
        Assert.True(Final("free_blocks_order9_final", "chunked") >= 40, $"chunked ends with {Final("free_blocks_order9_final", "chunked")} order-9 blocks");
        Assert.True(Final("free_blocks_order9_final", "per-page") < 10, $"per-page ends with {Final("free_blocks_order9_final", "per-page")} order-9 blocks");
        Assert.True(Final("pcp_drains", "per-page") > 10 * Math.Max(1, Final("pcp_drains", "chunked")));
    }

    [Fact]
    public void AFragmentedStart_IsTheMachinesShapeFragmented_AsTheFragmenterLeavesIt_AndTheMachineIsNotRead()
    {
        var machine = new Machine(MachineConfig.Default());
        machine.Alloc("Normal", 10); // state a fragmented start does not see
        var before = machine.Fingerprint();
        var workload = new WorkloadSpec(WorkloadKind.Trace, Trace: KnownTraces.GitCloneTar, RangeEvery: 50);
        var fromSpec = ExperimentRunner.Run(machine, new ExperimentSpec(workload, [new("chunked")], Fragment: new FragmentSpec(262144)), 1, cancellationToken: Ct);
        var fromFragmented = ExperimentRunner.Run(Fragmented(), new ExperimentSpec(workload, [new("chunked")]), 1, cancellationToken: Ct);

        var a = fromSpec.Variants[0].Runs[0].Timeline;
        var b = fromFragmented.Variants[0].Runs[0].Timeline;
        Assert.Equal(a.Count, b.Count);
        Assert.All(a.Zip(b), p => Assert.True(p.First.Untimed().SameAs(p.Second.Untimed())));
        Assert.Equal(before, machine.Fingerprint());
        Assert.True(ExperimentRunner.Fragmented(machine.Config, "Normal", new FragmentSpec(262144, UnusableIndex: 0.0)).IsSuccess);
        Assert.NotEmpty(new ExperimentSpec(workload, [new("a")], Fragment: new FragmentSpec(-1, 12, 2)).Validate(machine));
    }

    [Fact]
    public void AMixIsPaired_RepeatRRunsSeedPlusR_InEveryVariant()
    {
        var spec = new ExperimentSpec(new(WorkloadKind.Mix, Steps: 2000), [new("a", FreeStrategy.PerPage), new("b", FreeStrategy.Upstream)], Repeat: 3, Seed: 7);
        var result = ExperimentRunner.Run(new Machine(MachineConfig.Default()), spec, parallelism: 2, cancellationToken: Ct);
        Assert.Equal([7, 8, 9], result.Variants[0].Runs.Select(r => r.Seed));
        Assert.Equal([7, 8, 9], result.Variants[1].Runs.Select(r => r.Seed));
        // Without a range user no free goes through a strategy: a and b are the same runs.
        Assert.True(result.Variants[0].Runs[2].Timeline[^1].Untimed().SameAs(result.Variants[1].Runs[2].Timeline[^1].Untimed()));
        // Different seeds, different mixes.
        Assert.False(result.Variants[0].Runs[0].Timeline[^1].Untimed().SameAs(result.Variants[0].Runs[1].Timeline[^1].Untimed()));
    }

    [Fact]
    public void ATimelineStaysWithinItsPoints_AndKeepsTheFirstAndLastStep()
    {
        var spec = new ExperimentSpec(new(WorkloadKind.SeedLoop, Steps: 1001), [new("chunked")], Points: 16);
        var run = ExperimentRunner.Run(new Machine(MachineConfig.Default()), spec, parallelism: 1, cancellationToken: Ct).Variants[0].Runs[0];
        Assert.InRange(run.Timeline.Count, 8, 17);
        Assert.Equal(0, run.Timeline[0].Step);
        Assert.Equal(1001, run.Timeline[^1].Step);
        Assert.Equal(run.Timeline.Select(s => s.Step).Order(), run.Timeline.Select(s => s.Step));
        var every = run.Timeline[1].Step;
        Assert.All(run.Timeline.SkipLast(1), s => Assert.Equal(0, s.Step % every));
    }

    [Fact]
    public void ACancelledExperiment_Stops()
    {
        using var cancel = new CancellationTokenSource();
        var spec = new ExperimentSpec(new(WorkloadKind.SeedLoop, Steps: ExperimentSpec.MaxSteps), [new("per-page", FreeStrategy.PerPage), new("chunked")]);
        long steps = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => ExperimentRunner.Run(new Machine(MachineConfig.Default()), spec, 2, done =>
        {
            if (Interlocked.Add(ref steps, done) > 2000)
            {
                cancel.Cancel();
            }
        }, cancel.Token));
        Assert.InRange(Interlocked.Read(ref steps), 2000, 100_000);
    }

    [Fact]
    public void AnInvalidExperiment_NamesEveryBadField()
    {
        var machine = new Machine(MachineConfig.Default());
        var spec = new ExperimentSpec(new(WorkloadKind.Trace, Zone: "Nowhere", Steps: 0, Trace: "no-such-trace", RangeOrder: 11),
            [new("x", MinFreeKbytes: -1), new("x", FailPageAlloc: new(Probability: 101))], Repeat: 0, Points: 1);
        var fields = spec.Validate(machine).Select(p => p.Field).ToHashSet();
        Assert.Superset(new HashSet<string> { "workload.zone", "workload.steps", "workload.trace", "workload.rangeOrder", "repeat", "points",
            "variants[1].name", "variants[0].minFreeKbytes", "variants[1].failPageAlloc.probability" }, fields);
        Assert.Empty(new ExperimentSpec(new(WorkloadKind.Trace, Trace: KnownTraces.GitCloneTar), [new("a")]).Validate(machine));
    }

    [Fact]
    public void MinFreeKbytesWritten_GivesTheWatermarksAndPcpLimitsOfAMachineBootedWithIt()
    {
        var machine = new Machine(MachineConfig.Default());
        machine.Alloc("Normal", 0);
        Assert.Empty(machine.SetMinFreeKbytes(131072));
        var config = MachineConfig.Default();
        config.MinFreeKbytes = 131072;
        var booted = new Machine(config);
        Assert.Equal(131072, machine.MinFreeKbytes);
        foreach (var (set, boot) in machine.Stats().Zip(booted.Stats()))
        {
            Assert.Equal(boot.Watermarks, set.Watermarks);
            Assert.Equal(boot.LowmemReserve, set.LowmemReserve);
            Assert.Equal(boot.Pcp.Select(p => (p.Batch, p.HighMin, p.HighMax)), set.Pcp.Select(p => (p.Batch, p.HighMin, p.HighMax)));
        }
        // A fork and a snapshot carry it.
        Assert.Equal(machine.Stats()[2].Watermarks, machine.Fork().Stats()[2].Watermarks);
        using var file = new MemoryStream();
        PageAlloc.Domain.Snapshots.MachineSnapshot.Write(machine, file);
        file.Position = 0;
        Assert.Equal(machine.Fingerprint(), PageAlloc.Domain.Snapshots.MachineSnapshot.Read(file).Fingerprint());
        // A value the configuration refuses changes nothing.
        var before = machine.Fingerprint();
        Assert.NotEmpty(machine.SetMinFreeKbytes(-5));
        Assert.Equal(before, machine.Fingerprint());
        machine.AssertConsistent();
    }

    [Fact]
    public void TheTimelineCsv_HasOneRowPerSample_AndAsManyFieldsAsItsHeader()
    {
        var spec = new ExperimentSpec(new(WorkloadKind.SeedLoop, Steps: 100), [new("per,page \"quoted\"", FreeStrategy.PerPage), new("chunked")], Points: 10);
        var result = ExperimentRunner.Run(new Machine(MachineConfig.Default()), spec, 1, cancellationToken: Ct);
        var rows = ExperimentSummary.TimelineCsv(result).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1 + result.Variants.Sum(v => v.Runs.Sum(r => r.Timeline.Count)), rows.Length);
        var columns = rows[0].Split(',').Length;
        Assert.All(rows.Skip(1), r => Assert.Equal(columns, r.Replace("\"per,page \"\"quoted\"\"\"", "v", StringComparison.Ordinal).Split(',').Length));
        Assert.StartsWith("\"per,page \"\"quoted\"\"\",0,0,", rows[1], StringComparison.Ordinal);
    }
}
