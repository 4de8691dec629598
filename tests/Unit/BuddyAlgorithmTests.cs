using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>The reference's worked examples for expand() and __free_one_page().</summary>
public class BuddyAlgorithmTests
{
    [Fact]
    public void Expand_Order0FromOrder3Block_PutsUpperHalvesOnLowerOrderLists()
    {
        // One order-3 block at P = 0x1000.
        var machine = TestMachines.SingleZone(0x1000, 8);
        var zone = machine.Normal();
        Assert.Equal([0x1000L], zone.FreeListPfns(3, MigrateType.Movable));

        var block = machine.Alloc("Normal", 0, "GFP_HIGHUSER_MOVABLE");

        Assert.Equal(0x1000, block.Pfn);
        Assert.Equal([0x1004L], zone.FreeListPfns(2, MigrateType.Movable));
        Assert.Equal([0x1002L], zone.FreeListPfns(1, MigrateType.Movable));
        Assert.Equal([0x1001L], zone.FreeListPfns(0, MigrateType.Movable));
        Assert.Empty(zone.FreeListPfns(3, MigrateType.Movable));
        machine.AssertConsistent();
    }

    [Fact]
    public void FreeOnePage_BuddiesFree_MergeBackToTheOriginalBlock()
    {
        var machine = TestMachines.SingleZone(0x1000, 8);
        var zone = machine.Normal();
        var block = machine.Alloc("Normal", 0, "GFP_HIGHUSER_MOVABLE");

        Assert.True(zone.FreePages(block.Pfn, 0, cpu: 0).IsSuccess);
        zone.DrainPages(null);

        Assert.Equal([0x1000L], zone.FreeListPfns(3, MigrateType.Movable));
        for (var order = 0; order < 3; order++)
        {
            Assert.Empty(zone.FreeListPfns(order, MigrateType.Movable));
        }
        machine.AssertConsistent();
    }

    [Fact]
    public void FreeOnePage_NeverMergesPastTheZoneStart()
    {
        // DMA starts at pfn 1: pfn 1's buddy is pfn 0, outside the zone, so pfn 1 stays order 0.
        var machine = new PageAlloc.Domain.Allocator.Machine(MachineConfig.Default());
        var dma = machine.FindZone("DMA")!;
        Assert.Equal([1L], dma.FreeListPfns(0, MigrateType.Movable));
        Assert.Equal([2L], dma.FreeListPfns(1, MigrateType.Movable));
        Assert.Equal([1024L, 2048L, 3072L], dma.FreeListPfns(10, MigrateType.Movable));
        Assert.Equal("Node 0, zone      DMA      1      1      1      1      1      1      1      1      1      1      3 ",
            machine.BuddyInfo().Split('\n')[0]);
    }

    [Fact]
    public void Boot_FreesTheLargestAlignedBlocks_AllPageblocksMovable()
    {
        var machine = new PageAlloc.Domain.Allocator.Machine(MachineConfig.Default());
        var normal = machine.Normal().Stats();

        Assert.Equal(1048576 / 1024, normal.NrFree[10]);
        Assert.Equal(1048576, normal.FreePages);
        Assert.Equal(1048576 / 512, normal.PageblocksByType[(int)MigrateType.Movable]);
        machine.AssertConsistent();
    }

    [Fact]
    public void SplitPage_Order3_GivesEightOrder0PagesWithRefcountOne()
    {
        var machine = TestMachines.SingleZone(0x1000, 8);
        var zone = machine.Normal();
        var block = machine.Alloc("Normal", 3);

        var split = zone.SplitPage(block.Pfn, 3);

        Assert.True(split.IsSuccess);
        Assert.Equal(8, split.Value.Pages);
        for (var pfn = block.Pfn; pfn < block.Pfn + 8; pfn++)
        {
            var state = zone.GetPageState(pfn).Value;
            Assert.Equal(1, state.Refcount);
            Assert.Equal(0, state.BlockOrder);
            Assert.Equal(pfn, state.BlockPfn);
        }
        machine.AssertConsistent();
    }

    [Fact]
    public void FreePages_NonCompoundStillReferenced_FreesTheTailHalves()
    {
        // ___free_pages(): the head keeps its reference; orders 2, 1, 0 at offsets 4, 2, 1 go back.
        var machine = TestMachines.SingleZone(0x1000, 8);
        var zone = machine.Normal();
        var block = machine.Alloc("Normal", 3, "GFP_HIGHUSER_MOVABLE");
        Assert.Equal(2, zone.GetPage(block.Pfn).Value.Refcount);

        var result = zone.FreePages(block.Pfn, 3, cpu: 0).Value;

        Assert.False(result.Freed);
        Assert.Equal(1, result.Refcount);
        var stats = zone.Stats();
        Assert.Equal(1, stats.AllocatedPages);
        Assert.Equal(7, stats.FreePages + stats.PcpPages);
        machine.AssertConsistent();

        Assert.True(zone.FreePages(block.Pfn, 0, cpu: 0).Value.Freed);
        zone.DrainPages(null);
        Assert.Equal([0x1000L], zone.FreeListPfns(3, MigrateType.Movable));
    }

    [Fact]
    public void AllocPages_Compound_PutPageOnATailFreesTheWholeFolio()
    {
        var machine = TestMachines.SingleZone(0x1000, 8);
        var zone = machine.Normal();
        var block = machine.Alloc("Normal", 3, "GFP_KERNEL|__GFP_COMP");
        Assert.True(block.Compound);

        var put = zone.PutPage(block.Pfn + 5, cpu: 0).Value;

        Assert.True(put.Freed);
        Assert.Equal(0, zone.Stats().AllocatedPages);
        machine.AssertConsistent();
    }
}
