using PageAlloc.Domain.Import;
using PageAlloc.Domain.Proc;

namespace PageAlloc.Tests.Unit;

/// <summary>The synthetic fragmenter brings a zone to its target free pages and unusable_index, deterministically.</summary>
public class FragmenterTests
{
    [Theory]
    [InlineData(200_000L, 9, 0.5)]
    [InlineData(100_000L, 4, 0.9)]
    [InlineData(50_000L, 10, 0.0)]
    public void AZone_ReachesItsTarget_AndStaysConsistent(long freePages, int order, double unusable)
    {
        var machine = TestMachines.SingleZone(1 << 20, 1 << 19, cpus: 2);
        var counts = Fragmenter.Target("Normal", freePages, order, unusable, seed: 5)!;

        Assert.Null(machine.Normal().ImportFreeLists(counts, seed: 5));

        var stats = machine.Normal().Stats();
        Assert.Equal(freePages, stats.FreePages);
        // Pages in blocks of the order come in whole blocks: the index is met to within one block's share.
        var slack = (1 << order) / (double)freePages + 0.001;
        Assert.InRange(Fragmentation.UnusableIndex(stats.NrFree, order) / 1000.0, unusable - slack, unusable + slack);
        machine.AssertConsistent();
    }

    [Fact]
    public void TheSameSeed_GivesTheSameCounts()
    {
        var a = Fragmenter.Target("Normal", 100_000, 6, 0.7, seed: 9)!;
        var b = Fragmenter.Target("Normal", 100_000, 6, 0.7, seed: 9)!;

        Assert.Equal(a.FreeBlocks, b.FreeBlocks);
    }

    [Theory]
    [InlineData(-1L, 9, 0.5)]
    [InlineData(1000L, 0, 0.5)]
    [InlineData(1000L, 9, 1.5)]
    public void AnImpossibleTarget_IsRefused(long freePages, int order, double unusable) =>
        Assert.Null(Fragmenter.Target("Normal", freePages, order, unusable, seed: 1));
}
