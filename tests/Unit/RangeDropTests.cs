using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Concurrency;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// The range free's one-pass drop and the invariants it leans on: only block heads carry an order,
/// and the zone counts the HWPoison pages in use. And the spin lock the zone's locks are.
/// </summary>
public class RangeDropTests
{
    private static (Machine Machine, Zone Zone, long Pfn) SplitBlock(int order)
    {
        var machine = TestMachines.SingleZone(0x10000, 4096);
        var block = machine.Alloc("Normal", order);
        Assert.True(machine.Normal().SplitPage(block.Pfn, order).IsSuccess);
        return (machine, machine.Normal(), block.Pfn);
    }

    [Theory]
    [InlineData(FreeStrategy.Chunked)]
    [InlineData(FreeStrategy.Upstream)]
    public void APageWithTwoReferencesLateInTheRange_RestoresTheEarlierDrops_AndThePageByPagePathFreesTheRest(FreeStrategy strategy)
    {
        var (machine, zone, pfn) = SplitBlock(9);
        Assert.True(zone.GetPage(pfn + 500).IsSuccess);

        var result = zone.FreeContigRange(pfn, 512, strategy, 0).Value;

        Assert.Equal(new ContigFreeSummary(511, 1, 0), result);
        Assert.Equal(1, zone.GetPageState(pfn + 500).Value.Refcount);
        machine.AssertConsistent();
    }

    [Fact]
    public void ARangeEndingOnTheHeadOfAnUnsplitBlock_IsRefused_AndChangesNothing()
    {
        var machine = TestMachines.SingleZone(0x10000, 4096);
        var zone = machine.Normal();
        var first = machine.Alloc("Normal", 3);
        var second = machine.Alloc("Normal", 3);
        Assert.Equal(first.Pfn + 8, second.Pfn);
        Assert.True(zone.SplitPage(first.Pfn, 3).IsSuccess);
        var before = machine.Fingerprint();

        var refused = zone.FreeContigRange(first.Pfn, 9, FreeStrategy.Chunked, 0);

        Assert.Equal(PageErrorKind.NotSplit, refused.Error?.Kind);
        Assert.Equal(before, machine.Fingerprint());
        Assert.All(Enumerable.Range(0, 8), i => Assert.Equal(1, zone.GetPageState(first.Pfn + i).Value.Refcount));
    }

    [Fact]
    public void AnInUseHwPoisonPage_SendsTheRangeDownThePageByPagePath_AndIsLeaked()
    {
        var (machine, zone, pfn) = SplitBlock(4);
        Assert.True(zone.SetHwPoison(pfn + 3).IsSuccess);

        var result = zone.FreeContigRange(pfn, 16, FreeStrategy.Chunked, 0).Value;

        Assert.Equal(new ContigFreeSummary(15, 0, 1), result);
        Assert.Equal(PageLocation.HwPoisonLeaked, zone.GetPageState(pfn + 3).Value.Where);
        machine.AssertConsistent();
    }

    [Fact]
    public void TheInvariantChecker_ReportsAnOrderLeftInsideABlock()
    {
        var machine = TestMachines.SingleZone(0x10000, 4096);
        var zone = machine.Normal();
        var pfn = machine.Alloc("Normal", 4).Pfn;
        zone.Order[zone.IndexOf(pfn) + 5] = 2; // as a merge that forgot to clear an absorbed head would leave it

        var problems = machine.CheckInvariants();

        Assert.Contains(problems, p => p.Contains("keeps order 2", StringComparison.Ordinal));
    }

    [Fact]
    public void MergingBuddies_LeaveNoOrderInsideTheMergedBlock()
    {
        var (machine, zone, pfn) = SplitBlock(6);
        // Free the pages in an order that builds the block up from many small merges.
        for (var i = 63; i >= 0; i -= 2)
        {
            Assert.True(zone.FreePages(pfn + i, 0, 0).IsSuccess);
        }
        zone.DrainPages(null);
        for (var i = 62; i >= 0; i -= 2)
        {
            Assert.True(zone.FreePages(pfn + i, 0, 0).IsSuccess);
        }
        zone.DrainPages(null);

        Assert.Empty(machine.CheckInvariants());
        Assert.All(Enumerable.Range(1, 63), i => Assert.Equal(0, zone.Order[zone.IndexOf(pfn) + i]));
    }

    [Fact]
    public async Task TheSpinLock_AdmitsOneHolderAtATime_AndCountsWhatWaited()
    {
        var spin = new InstrumentedLock("test");
        var inside = 0;
        var overlaps = 0;
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                using var held = spin.Enter();
                if (Interlocked.Increment(ref inside) != 1)
                {
                    Interlocked.Increment(ref overlaps);
                }
                Interlocked.Decrement(ref inside);
            }
        }, TestContext.Current.CancellationToken)).ToArray();
        await Task.WhenAll(workers);

        Assert.Equal(0, overlaps);
        var stats = spin.Snapshot();
        Assert.Equal(80_000, stats.Acquisitions);
        Assert.InRange(stats.Contended, 0, 80_000);
        using (spin.Enter())
        {
            Assert.False(spin.TryEnter());
        }
        Assert.Equal(1, spin.Snapshot().FailedTryLocks);
    }
}
