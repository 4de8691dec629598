using static PageAlloc.Domain.Model.PageAllocConstants;

namespace PageAlloc.Domain.Import;

/// <summary>
/// A synthetic fragmenter for experiments: the free lists that bring a zone to a target amount of
/// free memory with a target unusable_index at one order (the share of free memory in blocks smaller
/// than it), to import with <see cref="Allocator.Zone.ImportFreeLists"/>. The pages in blocks of the
/// order or more go in the largest aligned sizes that fit; the rest in blocks below the order, of
/// sizes drawn with the seed. All Movable, in Movable pageblocks (what a fragmented desktop shows).
/// </summary>
public static class Fragmenter
{
    /// <summary>The counts, or null when the target cannot be met (unusable index outside 0..1, order outside 1..10).</summary>
    public static FreeListCounts? Target(string zone, long freePages, int order, double unusableIndex, int seed)
    {
        if (freePages < 0 || order is < 1 or > MaxPageOrder || unusableIndex is < 0 or > 1)
        {
            return null;
        }
        var blocks = new long[Model.MigrateTypes.Count][];
        for (var mt = 0; mt < blocks.Length; mt++)
        {
            blocks[mt] = new long[NrPageOrders];
        }
        var movable = blocks[(int)Model.MigrateType.Movable];
        // Pages in suitable blocks: a multiple of the order's size; the rest are unusable for it.
        var suitable = (long)Math.Round(freePages * (1 - unusableIndex)) >> order << order;
        for (var o = MaxPageOrder; o >= order; o--)
        {
            movable[o] = (suitable - SumPages(movable)) >> o;
        }
        var random = new Random(seed);
        var small = freePages - SumPages(movable);
        while (small > 0)
        {
            var o = Math.Min(random.Next(order), 63 - (int)ulong.LeadingZeroCount((ulong)small));
            movable[o]++;
            small -= 1L << o;
        }
        return new FreeListCounts(zone, blocks, Pageblocks: null);
    }

    private static long SumPages(long[] byOrder) => byOrder.Select((n, o) => n << o).Sum();
}
