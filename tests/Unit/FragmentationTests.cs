using PageAlloc.Domain.Proc;

namespace PageAlloc.Tests.Unit;

/// <summary>unusable_free_index() and __fragmentation_index() of mm/vmstat.c, worked by hand, and their debugfs text.</summary>
public class FragmentationTests
{
    private static long[] Free(params (int Order, long Blocks)[] blocks)
    {
        var nrFree = new long[11];
        foreach (var (order, n) in blocks)
        {
            nrFree[order] = n;
        }
        return nrFree;
    }

    [Theory]
    // 10 order-0, 5 order-1 and 1 order-3 block: 28 free pages in 16 blocks.
    [InlineData(0, 0, -1000)]
    [InlineData(2, 714, -1000)]   // (28 - 2 blocks x 4 pages) x 1000 / 28; an order-3 block serves an order-2 request
    [InlineData(3, 714, -1000)]   // (28 - 1 x 8) x 1000 / 28
    [InlineData(4, 1000, 829)]    // 1000 - (1000 + 28 x 1000 / 16) / 16, in integer division
    [InlineData(10, 1000, 936)]   // 1000 - (1000 + 28 x 1000 / 1024) / 16 = 1000 - 1027 / 16
    public void Indices_MatchTheKernelsIntegerArithmetic(int order, int unusable, int extfrag)
    {
        var nrFree = Free((0, 10), (1, 5), (3, 1));

        Assert.Equal(unusable, Fragmentation.UnusableIndex(nrFree, order));
        Assert.Equal(extfrag, Fragmentation.ExtfragIndex(nrFree, order));
    }

    [Fact]
    public void NothingFree_IsAllUnusable_AndNoFragmentation()
    {
        var nrFree = Free();

        Assert.Equal(1000, Fragmentation.UnusableIndex(nrFree, 3));
        Assert.Equal(0, Fragmentation.ExtfragIndex(nrFree, 3));
    }

    [Fact]
    public void DebugfsText_PrintsThousandthsAsTheKernelDoes()
    {
        var machine = TestMachines.SingleZone(1 << 20, 1 << 15); // 32 order-10 blocks
        for (var i = 0; i < 31; i++)
        {
            machine.Alloc("Normal", 10);
        }
        machine.Alloc("Normal", 0, "GFP_HIGHUSER_MOVABLE"); // the pcp refill splits the last one

        var stats = machine.Stats();
        var unusable = Fragmentation.UnusableIndexText(stats);
        var extfrag = Fragmentation.ExtfragIndexText(stats);

        Assert.Matches(@"^Node 0, zone   Normal (\d\.\d{3} ){11}\n$", unusable);
        Assert.Matches(@"^Node 0, zone   Normal (-?\d\.\d{3} ){11}\n$", extfrag);
        Assert.EndsWith(" 1.000 \n", unusable, StringComparison.Ordinal); // no order-10 block is free
        Assert.StartsWith("Node 0, zone   Normal -1.000 ", extfrag, StringComparison.Ordinal);
    }
}
