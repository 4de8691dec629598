using System.Diagnostics;
using System.Globalization;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Bench;

/// <summary>
/// `vmalloc`: the workload behind the series' patch 2/3. vmalloc() of N pages takes the largest
/// blocks it can (a06157804399, "request large order pages"), split_page()s them and keeps an
/// array of order-0 pages; vfree() hands the array to free_pages_bulk(). Timed per strategy.
/// </summary>
internal static class VmallocCommand
{
    public static int Run(Options options)
    {
        var strategies = options.Strategy is { } one ? [one] : Enum.GetValues<FreeStrategy>();
        var pages = options.Pages;
        var rounds = Rounds(options);
        foreach (var s in strategies)
        {
            WarmUp.Run(() => Measure(s, pages, Math.Min(rounds, 20)));
        }
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(Header(options));
        Console.WriteLine("strategy   alloc+split ns/page   free ns/page   free per-page/x");
        var results = strategies.Select(s => (Strategy: s, Result: Measure(s, pages, rounds))).ToList();
        var perPage = results.FirstOrDefault(r => r.Strategy == FreeStrategy.PerPage).Result.FreeNs;
        foreach (var (strategy, (allocNs, freeNs)) in results)
        {
            var ratio = perPage > 0 ? (perPage / freeNs).ToString("F2", c) : "-";
            Console.WriteLine(string.Create(c, $"{FreeStrategies.Name(strategy),-9} {allocNs / pages,20:F1} {freeNs / pages,14:F1} {ratio,17}"));
        }
        return 0;
    }

    /// <summary>The timed vmalloc + vfree rounds of each strategy: one per iteration asked for.</summary>
    internal static int Rounds(Options options) => options.Iterations;

    /// <summary>The report's first line: what each strategy's figures are of.</summary>
    internal static string Header(Options options) => string.Create(CultureInfo.InvariantCulture,
        $"vmalloc({options.Pages} pages) + vfree via free_pages_bulk, {Rounds(options)} rounds, zone Normal, cpu 0");

    private static (double AllocNs, double FreeNs) Measure(FreeStrategy strategy, int pages, int rounds)
    {
        var machine = new Machine(MachineConfig.Default());
        var zone = machine.FindZone("Normal")!;
        var pfns = new long[pages];
        long allocTicks = 0, freeTicks = 0;
        for (var r = 0; r < rounds; r++)
        {
            var start = Stopwatch.GetTimestamp();
            var filled = 0;
            while (filled < pages)
            {
                var order = Math.Min(PageAllocConstants.ILog2(pages - filled), PageAllocConstants.MaxPageOrder);
                PageResult<AllocatedBlock> block;
                while (!(block = machine.AllocPages(zone, order, Gfp.Kernel | GfpFlags.NoRetry | GfpFlags.NoWarn, 0)).IsSuccess && order > 0)
                {
                    order--; // fall back to a smaller order, as vm_area_alloc_pages() does
                }
                var pfn = block.Value.Pfn;
                zone.SplitPage(pfn, order);
                for (var i = 0; i < 1 << order; i++)
                {
                    pfns[filled++] = pfn + i;
                }
            }
            var mid = Stopwatch.GetTimestamp();
            zone.FreePagesBulk(pfns, strategy, 0);
            var end = Stopwatch.GetTimestamp();
            allocTicks += mid - start;
            freeTicks += end - mid;
        }
        var nsPerTick = 1e9 / Stopwatch.Frequency;
        return (allocTicks * nsPerTick / rounds, freeTicks * nsPerTick / rounds);
    }
}
