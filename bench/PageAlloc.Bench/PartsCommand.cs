using System.Diagnostics;
using System.Globalization;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Testing;

namespace PageAlloc.Bench;

/// <summary>
/// `parts`: the seed loop taken apart. Each of its three calls is timed on its own, over a batch of
/// blocks prepared (and cleaned up) outside the timing, at the loop's order, and split_page and
/// free_contig_range also at their smallest, where they do almost no memory work (alloc_pages
/// touches only the head page at any order); beside them the whole loop and the floor. Five
/// rounds alternating, medians. It answers where the loop's time goes: the calls' fixed costs
/// (checks, locks, lists, counters) against the memory work the floor stands for.
/// </summary>
internal static class PartsCommand
{
    private const int Rounds = 5;
    private const int Batch = 32; // blocks per timed batch: 32 order-9 blocks are 64 MiB of the default Normal zone

    public static int Run(Options options)
    {
        var order = options.Order;
        var config = MachineConfig.Default();
        var machine = new Machine(config);
        var zone = machine.FindZone("Normal")!;
        var batches = Math.Max(1, options.Iterations / Batch);

        var parts = new (string Name, Func<double> Measure)[]
        {
            ($"alloc_pages(GFP_KERNEL, {order})", () => Alloc(machine, zone, order, batches)),
            ($"split_page(page, {order})", () => SplitAndFree(machine, zone, order, batches).Split),
            ($"free_contig_range(pfn, {1 << order}), chunked", () => SplitAndFree(machine, zone, order, batches).Free),
            ("split_page(page, 1)", () => SplitAndFree(machine, zone, 1, batches).Split),
            ("free_contig_range(pfn, 1), chunked", () => SplitAndFree(machine, zone, 0, batches).Free),
            ("the seed loop, chunked", () => PageAllocHighOrderTest.Run(config, "Normal", FreeStrategy.Chunked, options.Iterations, order).Value.NsPerIteration),
            ("the floor", () => Floor.NsPerIteration(options.Iterations, order)),
        };
        foreach (var part in parts)
        {
            WarmUp.Run(() => part.Measure());
        }
        var rounds = parts.Select(_ => new List<double>()).ToArray();
        for (var round = 0; round < Rounds; round++)
        {
            for (var i = 0; i < parts.Length; i++)
            {
                rounds[i].Add(parts[i].Measure());
            }
        }
        var median = rounds.Select(r => r.Order().ElementAt(r.Count / 2)).ToArray();
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"the seed loop's parts, each timed alone: ns per call, median of {Rounds} rounds ({batches} batches of {Batch} per round)"));
        for (var i = 0; i < parts.Length; i++)
        {
            Console.WriteLine(string.Create(c, $"{parts[i].Name,-40} {median[i],8:F1}   (rounds {string.Join(", ", rounds[i].Select(x => x.ToString("F1", c)))})"));
        }
        var sum = median[0] + median[1] + median[2];
        // alloc_pages() touches only the head page at any order, so its cost at the loop's order is all fixed.
        var fixedCost = median[0] + median[3] + median[4];
        Console.WriteLine(string.Create(c, $"sum of the three calls at order {order}: {sum:F1} ns; their fixed costs (alloc_pages, split_page at order 1, "
            + $"free_contig_range of one page): {fixedCost:F1} ns, {fixedCost / median[6]:F2}x the floor"));
        return 0;
    }

    /// <summary>alloc_pages(): a batch timed, then freed untimed.</summary>
    private static double Alloc(Machine machine, Zone zone, int order, int batches)
    {
        var pfns = new long[Batch];
        long ticks = 0;
        for (var b = 0; b < batches; b++)
        {
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < Batch; i++)
            {
                pfns[i] = machine.AllocPages(zone, order, Gfp.Kernel, 0).Value.Pfn;
            }
            ticks += Stopwatch.GetTimestamp() - start;
            foreach (var pfn in pfns)
            {
                zone.FreePages(pfn, order, 0);
            }
        }
        return Ns(ticks, batches);
    }

    /// <summary>
    /// split_page() and free_contig_range(), each timed: a batch allocated untimed, split (order &gt; 0),
    /// then freed as ranges. (The loops stay written out: timing each call through a delegate
    /// measured the alloc and the split at 2-3x their cost.)
    /// </summary>
    private static (double Split, double Free) SplitAndFree(Machine machine, Zone zone, int order, int batches)
    {
        var pfns = new long[Batch];
        long splitTicks = 0, freeTicks = 0;
        for (var b = 0; b < batches; b++)
        {
            for (var i = 0; i < Batch; i++)
            {
                pfns[i] = machine.AllocPages(zone, order, Gfp.Kernel, 0).Value.Pfn;
            }
            var start = Stopwatch.GetTimestamp();
            if (order > 0)
            {
                foreach (var pfn in pfns)
                {
                    zone.SplitPage(pfn, order);
                }
            }
            var split = Stopwatch.GetTimestamp();
            foreach (var pfn in pfns)
            {
                zone.FreeContigRange(pfn, 1L << order, FreeStrategy.Chunked, 0);
            }
            freeTicks += Stopwatch.GetTimestamp() - split;
            splitTicks += split - start;
        }
        return (Ns(splitTicks, batches), Ns(freeTicks, batches));
    }

    private static double Ns(long ticks, int batches) => ticks * (1e9 / Stopwatch.Frequency) / ((double)batches * Batch);
}
