using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Replay;
using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Experiments;

/// <summary>
/// The workloads, each a loop over steps that calls <see cref="ExperimentRun.Stepped"/> after each.
/// Each is the same code the rest of PageAlloc runs for it: the seed loop of /tests, the vmalloc
/// loop of bench vmalloc, LoadGen's mixed step, the replay of /replay; here on a fork, in-process.
/// </summary>
public static class Workloads
{
    /// <summary>Steps a run of this workload takes (what progress counts).</summary>
    public static long StepsOf(WorkloadSpec w) => w.Kind == WorkloadKind.Trace
        ? w.TraceToRead()!.LineCount * w.Passes
        : w.Steps;

    public static void Run(ExperimentRun run, WorkloadSpec w)
    {
        run.Begin();
        switch (w.Kind)
        {
            case WorkloadKind.SeedLoop:
                SeedLoop(run, w);
                break;
            case WorkloadKind.VmallocLoop:
                VmallocLoop(run, w);
                break;
            case WorkloadKind.Mix:
                Mix(run, w);
                break;
            case WorkloadKind.Trace:
                Trace(run, w);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(w), w.Kind, "No such workload.");
        }
    }

    /// <summary>The seed's loop (its page_alloc_high_order_test()): alloc, split_page, free_contig_range, on cpu 0.</summary>
    private static void SeedLoop(ExperimentRun run, WorkloadSpec w)
    {
        for (var i = 0; i < w.Steps; i++)
        {
            run.SeedIteration(w.Order, cpu: 0);
            run.Stepped();
        }
    }

    /// <summary>
    /// vmalloc(pages) then vfree(), once per step, on cpu 0: vm_area_alloc_pages() takes the largest
    /// order that fits what is left (falling back an order at a time under __GFP_NORETRY), splits
    /// each block, and vfree() hands the order-0 pages to free_pages_bulk() with the variant's strategy.
    /// A vmalloc that cannot be filled gives back what it took (as __vmalloc_area_node()'s failure path).
    /// </summary>
    private static void VmallocLoop(ExperimentRun run, WorkloadSpec w)
    {
        var pfns = new long[w.Pages];
        for (var i = 0; i < w.Steps; i++)
        {
            var filled = 0;
            while (filled < w.Pages)
            {
                var order = Math.Min(ILog2(w.Pages - filled), MaxPageOrder);
                PageResult<AllocatedBlock> block;
                while (!(block = run.Alloc(order, Gfp.Kernel | GfpFlags.NoRetry | GfpFlags.NoWarn, 0)).IsSuccess && order > 0)
                {
                    order--;
                }
                if (!block.IsSuccess)
                {
                    break;
                }
                var b = block.Value;
                b.Zone.SplitPage(b.Pfn, order);
                for (var p = 0; p < 1 << order; p++)
                {
                    pfns[filled++] = b.Pfn + p;
                }
            }
            FreeBulk(run, pfns.AsSpan(0, filled));
            run.Stepped();
        }
    }

    // free_pages_bulk() takes one zone's pages; a vmalloc that fell back to another zone gives each zone its own.
    private static void FreeBulk(ExperimentRun run, ReadOnlySpan<long> pfns)
    {
        var start = 0;
        while (start < pfns.Length)
        {
            var first = pfns[start];
            var zone = run.Machine.Zones.First(z => z.Contains(first));
            var end = start;
            while (end < pfns.Length && zone.Contains(pfns[end]))
            {
                end++;
            }
            zone.FreePagesBulk(pfns[start..end].ToArray(), run.Strategy, 0);
            start = end;
        }
    }

    /// <summary>
    /// LoadGen's mixed step, one per step: with a full live set, or half the time, free a random live
    /// block; else allocate order 0..3, GFP_KERNEL or GFP_HIGHUSER_MOVABLE, on a random cpu. Every
    /// <see cref="WorkloadSpec.RangeEvery"/> steps the range user runs one seed iteration too.
    /// </summary>
    private static void Mix(ExperimentRun run, WorkloadSpec w)
    {
        var live = new List<AllocatedBlock>(w.LiveBlocks);
        var random = run.Random;
        var cpus = run.Machine.Cpus;
        for (var i = 1; i <= w.Steps; i++)
        {
            if (live.Count >= w.LiveBlocks || (live.Count > 0 && random.Next(2) == 0))
            {
                var at = random.Next(live.Count);
                var b = live[at];
                live[at] = live[^1];
                live.RemoveAt(live.Count - 1);
                b.Zone.FreePages(b.Pfn, b.Order, random.Next(cpus));
            }
            else
            {
                var order = random.Next(4);
                var gfp = random.Next(2) == 0 ? Gfp.Kernel : Gfp.HighUserMovable;
                if (run.Alloc(order, gfp, random.Next(cpus)) is { IsSuccess: true } block)
                {
                    live.Add(block.Value);
                }
            }
            RangeUser(run, w, i);
            run.Stepped();
        }
    }

    /// <summary>
    /// The trace's lines, each read by a <see cref="TraceReplayer"/> on the fork (its own timeline
    /// left off: the run samples), <see cref="WorkloadSpec.Passes"/> times over, with the range user
    /// every <see cref="WorkloadSpec.RangeEvery"/> lines.
    /// </summary>
    private static void Trace(ExperimentRun run, WorkloadSpec w)
    {
        var replayer = new TraceReplayer(run.Machine, run.Zone, timelineEvery: int.MaxValue, timelinePoints: 1);
        var trace = w.TraceToRead()!;
        long step = 0;
        for (var pass = 0; pass < w.Passes; pass++)
        {
            foreach (var line in trace.Open())
            {
                replayer.Read(line);
                RangeUser(run, w, ++step);
                run.Stepped();
            }
        }
    }

    private static void RangeUser(ExperimentRun run, WorkloadSpec w, long step)
    {
        if (w.RangeEvery > 0 && step % w.RangeEvery == 0)
        {
            run.SeedIteration(w.RangeOrder, cpu: 0);
        }
    }
}
