using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// The seed's page_alloc_high_order_test on the default machine: alloc_pages(GFP_KERNEL, 9),
/// split_page, free_contig_range(pfn, 512), and what it leaves behind per strategy.
/// </summary>
public class SeedLoopTests
{
    private static void RunSeedLoop(Machine machine, FreeStrategy strategy, int iterations)
    {
        var zone = machine.Normal();
        for (var i = 0; i < iterations; i++)
        {
            var block = machine.AllocPages(zone, 9, Gfp.Kernel, cpu: 0).Value;
            Assert.True(zone.SplitPage(block.Pfn, 9).IsSuccess);
            var freed = zone.FreeContigRange(block.Pfn, 512, strategy, cpu: 0);
            Assert.Equal(512, freed.Value.Freed);
        }
    }

    [Theory]
    [InlineData(FreeStrategy.Chunked)]
    [InlineData(FreeStrategy.Upstream)]
    public void SeedLoop_Chunked_LeavesOrder9BlocksOnThePcp_NoOrder0Pages(FreeStrategy strategy)
    {
        var machine = new Machine(MachineConfig.Default());

        RunSeedLoop(machine, strategy, 200);

        var zone = machine.Normal();
        Assert.Equal(0, zone.Stats().PcpBlocksByOrder[0]);
        Assert.True(zone.Stats().PcpBlocksByOrder[9] >= 1);
        Assert.Equal(0, zone.Stats().AllocatedPages);
        machine.AssertConsistent();
    }

    [Fact]
    public void SeedLoop_PerPage_LeavesOrder0PagesOnThePcp()
    {
        var machine = new Machine(MachineConfig.Default());

        RunSeedLoop(machine, FreeStrategy.PerPage, 200);

        var zone = machine.Normal();
        Assert.True(zone.Stats().PcpBlocksByOrder[0] > 0);
        Assert.Equal(0, zone.Stats().AllocatedPages);
        machine.AssertConsistent();
    }

    [Fact]
    public void SeedLoop_Chunked_SteadyStateNeverTakesTheZoneLock_PerPageTakesItForDrains()
    {
        var chunked = new Machine(MachineConfig.Default());
        var perPage = new Machine(MachineConfig.Default());
        RunSeedLoop(chunked, FreeStrategy.Chunked, 10);
        RunSeedLoop(perPage, FreeStrategy.PerPage, 10);
        var chunkedBefore = chunked.Normal().Stats().ZoneLock.Acquisitions;
        var perPageBefore = perPage.Normal().Stats().ZoneLock.Acquisitions;

        RunSeedLoop(chunked, FreeStrategy.Chunked, 100);
        RunSeedLoop(perPage, FreeStrategy.PerPage, 100);

        // Stats() itself takes the lock once per call.
        Assert.Equal(chunkedBefore + 1, chunked.Normal().Stats().ZoneLock.Acquisitions);
        Assert.True(perPage.Normal().Stats().ZoneLock.Acquisitions > perPageBefore + 100);
    }
}
