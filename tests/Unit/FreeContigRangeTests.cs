using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

public class FreeContigRangeTests
{
    /// <summary>16 order-0 pages at 0x1000..0x100f, from a split order-4 block.</summary>
    private static (Machine Machine, Zone Zone) SplitOrder4At0x1000()
    {
        var machine = TestMachines.SingleZone(0x1000, 16);
        var zone = machine.Normal();
        var block = machine.Alloc("Normal", 4, "GFP_HIGHUSER_MOVABLE");
        Assert.Equal(0x1000, block.Pfn);
        Assert.True(zone.SplitPage(block.Pfn, 4).IsSuccess);
        return (machine, zone);
    }

    [Theory]
    [InlineData(FreeStrategy.Upstream)]
    [InlineData(FreeStrategy.Chunked)]
    public void FreeContigRange_0x1003Plus13_FreesOrders0_2_3(FreeStrategy strategy)
    {
        var (machine, zone) = SplitOrder4At0x1000();
        var chunks = new ChunkTally();

        var result = zone.FreeContigRange(0x1003, 13, strategy, cpu: 0, chunks);

        Assert.Equal(new ContigFreeSummary(13, 0, 0), result.Value);
        Assert.Equal([new FreedChunk(0x1003, 0), new FreedChunk(0x1004, 2), new FreedChunk(0x1008, 3)], chunks);
        machine.AssertConsistent();
    }

    [Fact]
    public void FreeContigRange_PerPage_FreesEveryPageAtOrder0()
    {
        var (machine, zone) = SplitOrder4At0x1000();
        var chunks = new ChunkTally();

        var result = zone.FreeContigRange(0x1003, 13, FreeStrategy.PerPage, cpu: 0, chunks);

        Assert.Equal(13, result.Value.Freed);
        Assert.Equal(13, chunks.Count);
        Assert.All(chunks, c => Assert.Equal(0, c.Order));
        machine.AssertConsistent();
    }

    [Theory]
    [InlineData(FreeStrategy.PerPage)]
    [InlineData(FreeStrategy.Chunked)]
    [InlineData(FreeStrategy.Upstream)]
    public void FreeContigRange_PageStillReferenced_IsNotFreedAndEndsTheChunk(FreeStrategy strategy)
    {
        var (machine, zone) = SplitOrder4At0x1000();
        zone.GetPage(0x1004); // refcount 2: someone else holds it
        var chunks = new ChunkTally();

        var result = zone.FreeContigRange(0x1000, 16, strategy, cpu: 0, chunks).Value;

        Assert.Equal(15, result.Freed);
        Assert.Equal(1, result.NotFreed);
        Assert.DoesNotContain(chunks, c => c.Pfn <= 0x1004 && 0x1004 < c.Pfn + (1L << c.Order));
        Assert.Equal(1, zone.GetPageState(0x1004).Value.Refcount);
        machine.AssertConsistent();
    }

    [Fact]
    public void FreeContigRange_HwPoisonPage_IsLeakedAndEndsTheChunk()
    {
        var (machine, zone) = SplitOrder4At0x1000();
        Assert.True(zone.SetHwPoison(0x1008).IsSuccess);
        var chunks = new ChunkTally();

        var result = zone.FreeContigRange(0x1000, 16, FreeStrategy.Chunked, cpu: 0, chunks).Value;

        Assert.Equal(new ContigFreeSummary(15, 0, 1), result);
        Assert.Equal([new FreedChunk(0x1000, 3), new FreedChunk(0x1009, 0), new FreedChunk(0x100a, 1), new FreedChunk(0x100c, 2)], chunks);
        Assert.Equal(PageLocation.HwPoisonLeaked, zone.GetPageState(0x1008).Value.Where);
        var stats = zone.Stats();
        Assert.Equal(1, stats.HwPoisonLeakedPages);
        Assert.Equal(0, stats.AllocatedPages);
        machine.AssertConsistent();
    }

    [Fact]
    public void Upstream_ChunksStopAtMemorySectionBoundaries_AndGoUpToMaxOrder()
    {
        // 4096 pages straddling the section boundary at pfn 0x8000 (2^15).
        var machine = TestMachines.SingleZone(0x7000, 0x2000);
        var zone = machine.Normal();
        var pfns = new List<long>();
        for (var i = 0; i < 8; i++)
        {
            var b = machine.Alloc("Normal", 10, "GFP_HIGHUSER_MOVABLE");
            zone.SplitPage(b.Pfn, 10);
            pfns.Add(b.Pfn);
        }
        var chunks = new ChunkTally();

        // 0x7c00..0x83ff crosses the boundary at 0x8000; chunks of order 10 on either side.
        var result = zone.FreeContigRange(0x7c00, 0x800, FreeStrategy.Upstream, 0, chunks);

        Assert.True(result.IsSuccess);
        Assert.Equal([new FreedChunk(0x7c00, 10), new FreedChunk(0x8000, 10)], chunks);
        machine.AssertConsistent();
    }

    [Fact]
    public void Chunked_CapsChunksAtPageblockOrder()
    {
        var machine = TestMachines.SingleZone(0x8000, 0x400);
        var zone = machine.Normal();
        var b = machine.Alloc("Normal", 10, "GFP_HIGHUSER_MOVABLE");
        zone.SplitPage(b.Pfn, 10);
        var chunks = new ChunkTally();

        zone.FreeContigRange(b.Pfn, 1024, FreeStrategy.Chunked, 0, chunks);

        Assert.Equal([new FreedChunk(0x8000, 9), new FreedChunk(0x8200, 9)], chunks);
        machine.AssertConsistent();
    }

    [Fact]
    public void FreePagesBulk_ContiguousRunsFreedTogether_LikeVfree()
    {
        var (machine, zone) = SplitOrder4At0x1000();
        var chunks = new ChunkTally();

        var result = zone.FreePagesBulk([0x1000, 0x1001, 0x1002, 0x1003, 0x1008, 0x1009], FreeStrategy.Chunked, 0, chunks);

        Assert.Equal(6, result.Value.Freed);
        Assert.Equal([new FreedChunk(0x1000, 2), new FreedChunk(0x1008, 1)], chunks);
        machine.AssertConsistent();
    }
}
