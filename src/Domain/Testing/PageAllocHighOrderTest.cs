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
    /// Runs the loop; a cancelled <paramref name="cancellationToken"/> stops it within 256 iterations
    /// (OperationCanceledException). The private machine emits to <paramref name="tracepoints"/> when given.
    /// </summary>
    public static PageResult<HighOrderTestResult> Run(
        MachineConfig config, string zoneName, FreeStrategy strategy, int iterations, int order,
        Tracing.Tracepoints? tracepoints = null, CancellationToken cancellationToken = default)
    {
        if (iterations < 1)
        {
            return new PageError(PageErrorKind.InvalidLength, $"iterations must be at least 1, not {iterations}.");
        }
        if (order is < 1 or > PageAllocConstants.MaxPageOrder)
        {
            return new PageError(PageErrorKind.InvalidOrder, $"order must be 1..{PageAllocConstants.MaxPageOrder} (a block to split), not {order}.");
        }
        var machine = new Machine(config, tracepoints);
        if (machine.FindZone(zoneName) is not { } zone)
        {
            return new PageError(PageErrorKind.OutOfZone, $"there is no zone '{zoneName}'.");
        }
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
        return new HighOrderTestResult(
            strategy, iterations, order, zone.Key,
            (long)watch.Elapsed.TotalMicroseconds,
            watch.Elapsed.TotalNanoseconds / iterations,
            PostRunState.From(after, before, order));
    }
}

/// <summary>One strategy's run: total time, time per iteration, and the state afterwards.</summary>
public sealed record HighOrderTestResult(
    FreeStrategy Strategy, int Iterations, int Order, string Zone, long TotalMicroseconds, double NsPerIteration, PostRunState State);

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
