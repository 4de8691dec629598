using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>Every bug condition is refused with a typed failure, and nothing changes.</summary>
public class BadInputTests
{
    private readonly Machine _machine = TestMachines.SingleZone(0x1000, 64, cpus: 2);
    private Zone Zone => _machine.Normal();

    private void AssertRefused(PageErrorKind kind, Func<PageError?> call, string? detailContains = null)
    {
        var before = _machine.Fingerprint();
        var error = call();
        Assert.NotNull(error);
        Assert.Equal(kind, error.Kind);
        if (detailContains is not null)
        {
            Assert.Contains(detailContains, error.Detail, StringComparison.Ordinal);
        }
        Assert.Equal(before, _machine.Fingerprint());
        _machine.AssertConsistent();
    }

    [Theory]
    [InlineData(11)]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    public void AllocPages_OrderOutOfRange_IsRefused(int order) =>
        AssertRefused(PageErrorKind.InvalidOrder, () => _machine.AllocPages(Zone, order, Gfp.Kernel, 0).Error);

    [Fact]
    public void AllocPages_UnknownCpu_IsRefused() =>
        AssertRefused(PageErrorKind.InvalidCpu, () => _machine.AllocPages(Zone, 0, Gfp.Kernel, 2).Error);

    [Fact]
    public void AllocPages_TwoZoneModifiers_IsRefused() =>
        AssertRefused(PageErrorKind.InvalidGfp, () => _machine.AllocPages(Zone, 0, GfpFlags.Dma | GfpFlags.Dma32, 0).Error);

    [Fact]
    public void FreePages_DoubleFree_IsRefusedAndSaysTheBlockIsFree()
    {
        var block = _machine.Alloc("Normal", 3);
        Assert.True(Zone.FreePages(block.Pfn, 3, 0).IsSuccess);
        Zone.DrainPages(null);

        AssertRefused(PageErrorKind.PageFree, () => Zone.FreePages(block.Pfn, 3, 0).Error, "is free: head of an order-6 buddy block");
    }

    [Fact]
    public void FreePages_PageInsideAFreeBlock_SaysWhichBlock() =>
        AssertRefused(PageErrorKind.PageFree, () => Zone.FreePages(0x1008, 0, 0).Error, "inside an order-6 buddy block at 0x1000");

    [Fact]
    public void FreePages_PageOnAPcpList_IsRefused()
    {
        var block = _machine.Alloc("Normal", 0);
        Zone.FreePages(block.Pfn, 0, 0);

        AssertRefused(PageErrorKind.PageFree, () => Zone.FreePages(block.Pfn, 0, 0).Error, "per-CPU page list");
    }

    [Fact]
    public void FreePages_WrongOrder_IsRefused()
    {
        var block = _machine.Alloc("Normal", 2);
        AssertRefused(PageErrorKind.WrongOrder, () => Zone.FreePages(block.Pfn, 1, 0).Error);
    }

    [Fact]
    public void FreePages_Misaligned_IsRefused()
    {
        var block = _machine.Alloc("Normal", 2);
        AssertRefused(PageErrorKind.Misaligned, () => Zone.FreePages(block.Pfn + 1, 2, 0).Error);
    }

    [Fact]
    public void FreePages_TailOfNonSplitBlock_IsRefused()
    {
        var block = _machine.Alloc("Normal", 2);
        AssertRefused(PageErrorKind.NotHead, () => Zone.FreePages(block.Pfn + 1, 0, 0).Error, "tail page");
    }

    [Theory]
    [InlineData(0x0fffL)]
    [InlineData(0x1040L)]
    [InlineData(-5L)]
    [InlineData(long.MaxValue)]
    public void AnyPageOperation_PfnOutsideTheZone_IsRefused(long pfn)
    {
        AssertRefused(PageErrorKind.OutOfZone, () => Zone.FreePages(pfn, 0, 0).Error);
        AssertRefused(PageErrorKind.OutOfZone, () => Zone.GetPage(pfn).Error);
        AssertRefused(PageErrorKind.OutOfZone, () => Zone.PutPage(pfn, 0).Error);
        AssertRefused(PageErrorKind.OutOfZone, () => Zone.SplitPage(pfn, 0).Error);
        AssertRefused(PageErrorKind.OutOfZone, () => Zone.GetPageState(pfn).Error);
    }

    [Fact]
    public void FreeContigRange_RangeRunsPastTheZoneEnd_IsRefused() =>
        AssertRefused(PageErrorKind.OutOfZone, () => Zone.FreeContigRange(0x1030, 0x20, FreeStrategy.Chunked, 0).Error);

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    public void FreeContigRange_EmptyOrNegativeLength_IsRefused(long nrPages) =>
        AssertRefused(PageErrorKind.InvalidLength, () => Zone.FreeContigRange(0x1000, nrPages, FreeStrategy.Chunked, 0).Error);

    [Theory]
    [InlineData(FreeStrategy.PerPage)]
    [InlineData(FreeStrategy.Chunked)]
    [InlineData(FreeStrategy.Upstream)]
    public void FreeContigRange_RangeHoldsAFreePage_ChangesNothing(FreeStrategy strategy)
    {
        var block = _machine.Alloc("Normal", 3);
        Zone.SplitPage(block.Pfn, 3);

        // The last page of the range lies past the split block, in free memory.
        AssertRefused(PageErrorKind.PageFree, () => Zone.FreeContigRange(block.Pfn, 9, strategy, 0).Error);
    }

    [Fact]
    public void FreeContigRange_CompoundPage_IsRefused()
    {
        var block = _machine.Alloc("Normal", 3, "GFP_KERNEL|__GFP_COMP");
        AssertRefused(PageErrorKind.CompoundPage, () => Zone.FreeContigRange(block.Pfn, 8, FreeStrategy.Chunked, 0).Error);
    }

    [Fact]
    public void FreeContigRange_NonSplitBlock_IsRefused()
    {
        var block = _machine.Alloc("Normal", 3);
        AssertRefused(PageErrorKind.NotSplit, () => Zone.FreeContigRange(block.Pfn, 1, FreeStrategy.Chunked, 0).Error);
    }

    [Fact]
    public void SplitPage_CompoundPage_IsRefused()
    {
        var block = _machine.Alloc("Normal", 3, "GFP_KERNEL|__GFP_COMP");
        AssertRefused(PageErrorKind.CompoundPage, () => Zone.SplitPage(block.Pfn, 3).Error);
    }

    [Fact]
    public void SplitPage_FreePage_IsRefused() =>
        AssertRefused(PageErrorKind.PageFree, () => Zone.SplitPage(0x1000, 3).Error);

    [Fact]
    public void GetPage_FreePage_IsRefused() =>
        AssertRefused(PageErrorKind.PageFree, () => Zone.GetPage(0x1000).Error);

    [Fact]
    public void PutPage_LastReferenceOfNonCompoundHighOrder_IsRefused()
    {
        var block = _machine.Alloc("Normal", 2);
        AssertRefused(PageErrorKind.NonCompoundPut, () => Zone.PutPage(block.Pfn, 0).Error);
    }

    [Fact]
    public void FreePagesBulk_PfnListedTwice_IsRefused()
    {
        var block = _machine.Alloc("Normal", 1);
        Zone.SplitPage(block.Pfn, 1);
        AssertRefused(PageErrorKind.PageFree, () => Zone.FreePagesBulk([block.Pfn, block.Pfn + 1, block.Pfn], FreeStrategy.Chunked, 0).Error, "listed twice");
    }

    [Fact]
    public void DrainPages_UnknownCpu_IsRefused() =>
        AssertRefused(PageErrorKind.InvalidCpu, () => Zone.DrainPages(7).Error);

    [Fact]
    public void AllocPages_BelowTheWatermark_FailsAsAValue()
    {
        var machine = TestMachines.SingleZone(0x1000, 1024);
        var zone = machine.Normal();
        var results = new List<PageResult<AllocatedBlock>>();
        for (var i = 0; i < 1025; i++)
        {
            results.Add(machine.AllocPages(zone, 0, Gfp.Kernel, 0));
        }
        Assert.Equal(1024, results.Count(r => r.IsSuccess));
        Assert.Equal(PageErrorKind.OutOfMemory, results[^1].Error!.Kind);
        Assert.Equal(1, zone.Stats().Event(VmEvent.AllocFail));
        machine.AssertConsistent();
    }
}
