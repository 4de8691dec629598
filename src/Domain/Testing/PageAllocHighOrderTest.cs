using System.Diagnostics;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Domain.Testing;

/// <summary>
/// The seed's page_alloc_high_order_test: <c>iterations</c> times alloc_pages(GFP_KERNEL, order),
/// split_page(page, order), free_contig_range(pfn, 1 &lt;&lt; order), on a private machine booted
/// for the run, on one cpu. Returns the time taken and what the run left behind.
/// </summary>
public static class PageAllocHighOrderTest
{
    /// <summary>
    /// Runs the loop once, timed, on a machine booted for it; a cancelled <paramref name="cancellationToken"/>
    /// stops it within 256 iterations (OperationCanceledException). The private machine emits to
    /// <paramref name="tracepoints"/> when given. The code it runs may still be cold: see <see cref="RunRounds"/>.
    /// </summary>
    public static PageResult<HighOrderTestResult> Run(
        MachineConfig config, string zoneName, FreeStrategy strategy, int iterations, int order,
        Tracing.Tracepoints? tracepoints = null, CancellationToken cancellationToken = default)
    {
        if (Check(iterations, order) is { } invalid)
        {
            return invalid;
        }
        var machine = new Machine(config, tracepoints);
        if (machine.FindZone(zoneName) is not { } zone)
        {
            return NoSuchZone(zoneName);
        }
        // The timed loop is written out beside its stopwatch, not shared with the warm-up: timed
        // through a method of its own (Loop), chunked measured 1.3x slower in bench seed (188-213 ns
        // against 149-184, four alternating pairs on a quiet machine).
        const int cpu = 0;
        var pages = 1L << order;
        var before = zone.Stats();
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++)
        {
            if ((i & 255) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
            var block = machine.AllocPages(zone, order, Gfp.Kernel, cpu);
            if (block.Error is { } error)
            {
                return error; // the kernel test returns -1 when alloc_pages fails
            }
            zone.SplitPage(block.Value.Pfn, order);
            zone.FreeContigRange(block.Value.Pfn, pages, strategy, cpu);
        }
        watch.Stop();
        var after = zone.Stats();
        var ns = watch.Elapsed.TotalNanoseconds / iterations;
        return new HighOrderTestResult(
            strategy, iterations, order, zone.Key,
            (long)watch.Elapsed.TotalMicroseconds, ns,
            PostRunState.From(after, before, order))
        {
            NsPerIterationByRound = [ns],
        };
    }

    /// <summary>
    /// The loop as a user wants it timed: warmed up first, then <paramref name="rounds"/> timed runs,
    /// each on its own freshly booted machine; the median round stands for the strategy, and every
    /// round's time is kept for the spread. Tiered compilation runs new code unoptimised, then
    /// on-stack-replaced, and optimises it only after call counting and a background compile: a
    /// process's first run timed that (chunked at 7-20 µs per iteration instead of 0.15, and
    /// "faster" than upstream). The first warm-up of a strategy in a process runs untimed batches
    /// on a machine of its own for <see cref="FirstWarmUp"/> (as bench/'s WarmUp does); later ones a
    /// few batches.
    /// </summary>
    public static PageResult<HighOrderTestResult> RunRounds(
        MachineConfig config, string zoneName, FreeStrategy strategy, int iterations, int order, int rounds,
        CancellationToken cancellationToken = default)
    {
        if (Check(iterations, order) is { } invalid)
        {
            return invalid;
        }
        if (rounds < 1)
        {
            return new PageError(PageErrorKind.InvalidLength, $"rounds must be at least 1, not {rounds}.");
        }
        var warmUp = new Machine(config);
        if (warmUp.FindZone(zoneName) is not { } warmZone)
        {
            return NoSuchZone(zoneName);
        }
        var warmUpIterations = WarmUp(warmUp, warmZone, strategy, order, cancellationToken);
        var runs = new List<HighOrderTestResult>(rounds);
        for (var round = 0; round < rounds; round++)
        {
            var result = Run(config, zoneName, strategy, iterations, order, cancellationToken: cancellationToken);
            if (result.Error is { } error)
            {
                return error;
            }
            runs.Add(result.Value);
        }
        var median = runs.OrderBy(r => r.NsPerIteration).ElementAt(rounds / 2);
        return median with { NsPerIterationByRound = [.. runs.Select(r => r.NsPerIteration)], WarmUpIterations = warmUpIterations };
    }

    /// <summary>How long the first warm-up of a strategy in this process lasts.</summary>
    public static readonly TimeSpan FirstWarmUp = TimeSpan.FromSeconds(1);

    // Small, so that even per-page's batches (about 20 µs an iteration) end often enough for the time check.
    private const int WarmUpBatch = 16;

    private static readonly bool[] WarmedUp = new bool[Enum.GetValues<FreeStrategy>().Length];

    /// <summary>Untimed batches of the loop on <paramref name="machine"/>; returns the iterations run.</summary>
    private static long WarmUp(Machine machine, Zone zone, FreeStrategy strategy, int order, CancellationToken cancellationToken)
    {
        var first = !Volatile.Read(ref WarmedUp[(int)strategy]);
        var watch = Stopwatch.StartNew();
        long iterations = 0;
        for (var batch = 0; batch < 3 || (first && watch.Elapsed < FirstWarmUp); batch++)
        {
            if (Loop(machine, zone, strategy, WarmUpBatch, order, cancellationToken) is not null)
            {
                break; // the warm-up machine ran out of memory: the timed rounds will say so on their own machines
            }
            iterations += WarmUpBatch;
        }
        Volatile.Write(ref WarmedUp[(int)strategy], true);
        return iterations;
    }

    /// <summary>
    /// The seed's loop for the warm-up, untimed, on cpu 0: null, or the allocation failure that ended
    /// it. It warms what the time goes to (alloc_pages, split_page, free_contig_range) on one machine,
    /// rather than <see cref="Run"/> itself, which boots a machine per call; Run's own loop is
    /// on-stack-replaced early in the first round, and the median round keeps what is left of that out.
    /// </summary>
    private static PageError? Loop(Machine machine, Zone zone, FreeStrategy strategy, int iterations, int order, CancellationToken cancellationToken)
    {
        const int cpu = 0;
        var pages = 1L << order;
        for (var i = 0; i < iterations; i++)
        {
            if ((i & 255) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
            var block = machine.AllocPages(zone, order, Gfp.Kernel, cpu);
            if (block.Error is { } error)
            {
                return error;
            }
            zone.SplitPage(block.Value.Pfn, order);
            zone.FreeContigRange(block.Value.Pfn, pages, strategy, cpu);
        }
        return null;
    }

    private static PageError? Check(int iterations, int order)
    {
        if (iterations < 1)
        {
            return new PageError(PageErrorKind.InvalidLength, $"iterations must be at least 1, not {iterations}.");
        }
        if (order is < 1 or > PageAllocConstants.MaxPageOrder)
        {
            return new PageError(PageErrorKind.InvalidOrder, $"order must be 1..{PageAllocConstants.MaxPageOrder} (a block to split), not {order}.");
        }
        return null;
    }

    private static PageError NoSuchZone(string zoneName) => new(PageErrorKind.OutOfZone, $"there is no zone '{zoneName}'.");
}

/// <summary>
/// One strategy's run: total time, time per iteration, and the state afterwards. From
/// <see cref="PageAllocHighOrderTest.RunRounds"/>, the median round, with every round's time and
/// the untimed iterations run first.
/// </summary>
public sealed record HighOrderTestResult(
    FreeStrategy Strategy, int Iterations, int Order, string Zone, long TotalMicroseconds, double NsPerIteration, PostRunState State)
{
    /// <summary>Each timed round's ns per iteration, in the order they ran.</summary>
    public required double[] NsPerIterationByRound { get; init; }

    /// <summary>Iterations run untimed before the rounds (0 for a single run).</summary>
    public long WarmUpIterations { get; init; }
}

/// <summary>
/// What the loop left behind: free blocks of the test's order in the buddy and on pcp lists,
/// pages on order-0 pcp lists, and how often the zone lock and the pcp drain were used.
/// </summary>
public sealed record PostRunState(
    long BuddyBlocksOfOrder,
    long PcpBlocksOfOrder,
    long Order0PcpPages,
    long ZoneLockAcquisitions,
    long PcpDrains,
    long AllocatedPages)
{
    public static PostRunState From(ZoneStats after, ZoneStats before, int order) => new(
        after.NrFree[order],
        after.PcpBlocksByOrder[order],
        after.PcpBlocksByOrder[0],
        after.ZoneLock.Acquisitions - before.ZoneLock.Acquisitions - 1, // less the Stats() call's own
        after.Event(VmEvent.PcpDrain) - before.Event(VmEvent.PcpDrain),
        after.AllocatedPages);
}
