using System.Diagnostics;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Proc;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Experiments;

/// <summary>
/// One run: a workload on one fork, for one variant and one repeat. The workload calls
/// <see cref="Stepped"/> after each step; the run samples its timeline every
/// <see cref="_every"/> steps (halving the timeline and doubling the interval when it reaches
/// its bound, as a replay's timeline does), checks for cancellation and reports progress.
/// A run is one thread's: forks are never shared.
/// </summary>
public sealed class ExperimentRun
{
    private readonly int _points;
    private long _every;
    private readonly List<ExperimentSample> _timeline = [];
    private readonly ZoneCounters[] _start;
    private readonly Stopwatch _clock = new();
    private readonly CancellationToken _cancellationToken;
    private readonly Action<long>? _progress;
    private long _sinceProgress;

    public ExperimentRun(Machine fork, Zone zone, VariantSpec variant, int seed, int points, CancellationToken cancellationToken, Action<long>? progress = null)
    {
        Machine = fork;
        Zone = zone;
        Variant = variant;
        Random = new Random(seed);
        _points = points;
        _every = 1;
        _cancellationToken = cancellationToken;
        _progress = progress;
        _start = [.. fork.Zones.Select(z => z.Counters())];
    }

    public Machine Machine { get; }

    /// <summary>The workload's zone: its allocations prefer it, and its state is sampled.</summary>
    public Zone Zone { get; }

    public VariantSpec Variant { get; }

    /// <summary>The free strategy of free_contig_range() and free_pages_bulk() in this run.</summary>
    public FreeStrategy Strategy => Variant.StrategyOrDefault;

    /// <summary>The workload's randomness, seeded from the experiment's seed and the repeat.</summary>
    public Random Random { get; }

    public long Steps { get; private set; }

    public long HighOrderAttempts { get; private set; }

    public long HighOrderFailures { get; private set; }

    public IReadOnlyList<ExperimentSample> Timeline => _timeline;

    /// <summary>Starts the clock and takes the first sample (step 0, the fork as the variant left it).</summary>
    public void Begin()
    {
        _timeline.Add(Sample());
        _clock.Start();
    }

    /// <summary>alloc_pages() for the workload, its high orders counted.</summary>
    public PageResult<AllocatedBlock> Alloc(int order, GfpFlags gfp, int cpu)
    {
        var block = Machine.AllocPages(Zone, order, gfp, cpu);
        if (order > PageAllocCostlyOrder)
        {
            HighOrderAttempts++;
            if (!block.IsSuccess)
            {
                HighOrderFailures++;
            }
        }
        return block;
    }

    /// <summary>One iteration of the seed's loop: alloc_pages(GFP_KERNEL, order), split_page(), free_contig_range() with the variant's strategy.</summary>
    public void SeedIteration(int order, int cpu)
    {
        var block = Alloc(order, Gfp.Kernel, cpu);
        if (!block.IsSuccess)
        {
            return; // the kernel test returns -1; here the failure is counted and the workload goes on
        }
        var b = block.Value;
        b.Zone.SplitPage(b.Pfn, order);
        b.Zone.FreeContigRange(b.Pfn, 1L << order, Strategy, cpu);
    }

    /// <summary>After each step of the workload: sample when due, report progress, stop when cancelled.</summary>
    public void Stepped()
    {
        Steps++;
        if (++_sinceProgress == 256)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            _progress?.Invoke(_sinceProgress);
            _sinceProgress = 0;
        }
        if (Steps % _every == 0)
        {
            _clock.Stop();
            _timeline.Add(Sample());
            if (_timeline.Count >= _points)
            {
                // Keep step 0 and every sample at a multiple of the doubled interval.
                _every *= 2;
                _timeline.RemoveAll(s => s.Step % _every != 0);
            }
            _clock.Start();
        }
    }

    /// <summary>Stops the clock and takes the last sample, unless the last step was sampled already.</summary>
    public IReadOnlyList<ExperimentSample> End()
    {
        _clock.Stop();
        _progress?.Invoke(_sinceProgress);
        _sinceProgress = 0;
        if (_timeline[^1].Step != Steps)
        {
            _timeline.Add(Sample());
        }
        return _timeline;
    }

    private ExperimentSample Sample()
    {
        var zone = Zone.Counters();
        var nrFree = new long[NrPageOrders];
        foreach (var byOrder in zone.FreeBlocksByType)
        {
            for (var order = 0; order < NrPageOrders; order++)
            {
                nrFree[order] += byOrder[order];
            }
        }
        long failures = 0, refills = 0, drains = 0, acquisitions = 0, contended = 0, fallbacks = 0;
        for (var i = 0; i < Machine.Zones.Count; i++)
        {
            var now = i == Zone.Index ? zone : Machine.Zones[i].Counters();
            var start = _start[i];
            long Delta(VmEvent e) => now.Event(e) - start.Event(e);
            failures += Delta(VmEvent.AllocFail);
            refills += Delta(VmEvent.PcpRefill);
            drains += Delta(VmEvent.PcpDrain);
            fallbacks += Delta(VmEvent.FallbackClaim) + Delta(VmEvent.FallbackSteal);
            acquisitions += now.ZoneLock.Acquisitions - start.ZoneLock.Acquisitions;
            contended += now.ZoneLock.Contended - start.ZoneLock.Contended;
        }
        return new ExperimentSample(Steps, zone.FreePages, zone.PcpPagesByCpu.Sum(), nrFree,
            Fragmentation.UnusableIndices(nrFree), Fragmentation.ExtfragIndices(nrFree),
            HighOrderAttempts, HighOrderFailures, failures, refills, drains, acquisitions, contended, fallbacks,
            (long)_clock.Elapsed.TotalNanoseconds);
    }
}
