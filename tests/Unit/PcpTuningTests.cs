using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// The pcp auto-tuning of v6.7+ (mm/page_alloc.c): nr_pcp_alloc()'s alloc_factor and high growth,
/// nr_pcp_high() on free, ZONE_BELOW_HIGH, free_high for runs of high-order frees, and
/// decay_pcp_high() per vmstat interval.
/// </summary>
public class PcpTuningTests
{
    private static Machine OneZone(long pages = 65536, long minFreeKbytes = 0) =>
        new(MachineConfig.SingleNode(1, minFreeKbytes, new ZoneConfig { Name = "Normal", StartPfn = 0x100000, Pages = pages }));

    private static PcpStats Pcp(Machine m) => m.Normal().Stats().Pcp[0];

    private static long RefillPages(Machine m) => m.Normal().Stats().Event(VmEvent.PcpRefillPages);

    /// <summary>The sizes of the order-0 refills during <paramref name="allocations"/> allocations in a row.</summary>
    private static List<long> RefillSizes(Machine m, int allocations)
    {
        var sizes = new List<long>();
        for (var i = 0; i < allocations; i++)
        {
            var before = RefillPages(m);
            m.Alloc("Normal", 0);
            if (RefillPages(m) > before)
            {
                sizes.Add(RefillPages(m) - before);
            }
        }
        return sizes;
    }

    [Fact]
    public void NrPcpAlloc_DoublesTheRefill_WhileAllocationsComeWithoutFrees()
    {
        // alloc_factor grows by one per refill without a free in between: batch, 2 batch, 4 batch ...
        var m = OneZone();
        var batch = Pcp(m).Batch;

        var sizes = RefillSizes(m, 8 * batch);

        Assert.Equal([batch, 2L * batch, 4L * batch], sizes.Take(3));
    }

    [Fact]
    public void AFree_HalvesTheAllocFactor()
    {
        // free_frozen_page_commit(): pcp->alloc_factor >>= 1.
        var m = OneZone();
        var batch = Pcp(m).Batch;
        var pages = new List<long>();
        for (var i = 0; i < batch + (2 * batch) + (4 * batch); i++)
        {
            pages.Add(m.Alloc("Normal", 0).Pfn); // three refills: alloc_factor is 3
        }
        Assert.True(m.Normal().FreePages(pages[0], 0, 0).IsSuccess); // 3 >> 1 = 1
        m.Normal().DrainPages(null);

        var next = RefillSizes(m, 1);

        Assert.Equal([2L * batch], next);
    }

    [Fact]
    public void NrPcpAlloc_RaisesHighByTheBatch_WhileTheZoneIsAboveItsHighWatermark()
    {
        var m = OneZone();
        var before = Pcp(m);
        Assert.Equal(before.HighMin, before.High);

        m.Alloc("Normal", 0);

        Assert.Equal(Math.Min(before.HighMin + before.Batch, before.HighMax), Pcp(m).High);
    }

    [Fact]
    public void DecayPcpHigh_LowersHighByAnEighthPerInterval_AndDrainsWhatIsAbove()
    {
        // decay_pcp_high(): high = max(count - (batch << 5), high - high / 8, high_min); count - high drained.
        var m = OneZone();
        var pages = new List<long>();
        for (var i = 0; i < 3000; i++)
        {
            pages.Add(m.Alloc("Normal", 0).Pfn);
        }
        foreach (var pfn in pages)
        {
            Assert.True(m.Normal().FreePages(pfn, 0, 0).IsSuccess);
        }
        var before = Pcp(m);
        Assert.True(before.High > before.HighMin, $"high {before.High} should have grown past high_min {before.HighMin}");

        var drained = m.VmstatUpdate();

        var after = Pcp(m);
        var expectedHigh = Math.Max(Math.Max(before.Count - (before.Batch << 5), before.High - (before.High >> 3)), before.HighMin);
        Assert.Equal(expectedHigh, after.High);
        Assert.Equal(Math.Max(before.Count - expectedHigh, 0), drained);
        Assert.Equal(before.Count - drained, after.Count);
        for (var i = 0; i < 100; i++)
        {
            m.VmstatUpdate();
        }
        Assert.Equal(after.HighMin, Pcp(m).High); // an idle cpu decays back to high_min
        m.AssertConsistent();
    }

    [Fact]
    public void BelowTheHighWatermark_FreesShrinkHigh_InsteadOfGrowingIt()
    {
        // get_page_from_freelist() sets ZONE_BELOW_HIGH when the zone fails its high watermark;
        // nr_pcp_high() then lowers high by max(free_count, batch) per free, to high_min at least.
        var m = OneZone(pages: 65536, minFreeKbytes: 16384); // high watermark 6144 of 65536; high_min 5120, high_max 8192
        var zone = m.Normal();
        var pages = new List<long>();
        while (zone.NrFreePages > zone.Watermarks.High)
        {
            pages.Add(m.Alloc("Normal", 0).Pfn);
        }
        pages.Add(m.Alloc("Normal", 0).Pfn); // the allocation that finds the zone below high
        Assert.True(zone.BelowHigh, $"free {zone.NrFreePages} high {zone.Watermarks.High} {Pcp(m)}");
        var raised = Pcp(m).High;
        Assert.True(raised > Pcp(m).HighMin, $"{Pcp(m)} wm {zone.Watermarks}");

        Assert.True(zone.FreePages(pages[^1], 0, 0).IsSuccess);

        var pcp = Pcp(m);
        Assert.Equal(Math.Max(raised - Math.Max(1, pcp.Batch), pcp.HighMin), pcp.High);
    }

    [Fact]
    public void FreeHigh_ARunOfHighOrderFrees_DrainsAtOnce_AndLowersHigh()
    {
        // free_frozen_page_commit(): with the previous free also of order 1..3 and free_count past
        // batch + high_min / 2, nr_pcp_high() answers 0 (drain now) and lowers high by batch << 5.
        var m = OneZone(pages: 8192); // a small zone: high_min / 2 is within free_count's reach
        var zone = m.Normal();
        var pcp = Pcp(m);
        var blocks = new List<long>();
        for (var i = 0; i < 600; i++)
        {
            blocks.Add(m.Alloc("Normal", 2).Pfn);
        }
        var drainsBefore = zone.Stats().Event(VmEvent.PcpDrain);
        var drainedAt = -1;
        for (var i = 0; i < blocks.Count && drainedAt < 0; i++)
        {
            Assert.True(zone.FreePages(blocks[i], 2, 0).IsSuccess);
            if (zone.Stats().Event(VmEvent.PcpDrain) > drainsBefore)
            {
                drainedAt = i;
            }
        }

        // free_count grows by 4 per order-2 free, from 0: the first free whose free_count (before
        // adding) reaches batch + high_min / 2 drains, far below high.
        var threshold = pcp.Batch + (pcp.HighMin / 2);
        Assert.Equal((threshold + 3) / 4, drainedAt);
        Assert.Equal(0, Pcp(m).Count);
        m.AssertConsistent();
    }
}
