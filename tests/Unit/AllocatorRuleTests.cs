using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// The kernel's allocation rules that docs/model.md claims, one rule per test, each named after the
/// rule and citing the function that makes it (mm/page_alloc.c unless said otherwise).
/// </summary>
public class AllocatorRuleTests
{
    private static Machine OneZone(long pages = 4096, long? minFreeKbytes = 0) => new(MachineConfig.SingleNode(
        1, minFreeKbytes, new ZoneConfig { Name = "Normal", StartPfn = 0x10000, Pages = pages }));

    private static PageResult<AllocatedBlock> Alloc(Machine m, string zone, int order, string gfp)
    {
        Assert.True(Gfp.TryParse(gfp, out var flags, out _));
        return m.AllocPages(m.FindZone(zone)!, order, flags, 0);
    }

    [Fact]
    public void RmqueueClaim_AnUnmovableAllocationOnAllMovableMemory_ClaimsTheWholeBlock()
    {
        // __rmqueue_claim() -> try_to_claim_block(): a fallback block of pageblock_order or more
        // changes the type of every pageblock it spans (change_pageblock_range()) and is expanded
        // on the requested type's lists.
        var m = OneZone();
        var before = m.Normal().Stats().PageblocksByType[(int)MigrateType.Unmovable];

        var block = Alloc(m, "Normal", 4, "GFP_KERNEL").Value;

        var after = m.Normal().Stats();
        Assert.Equal(MigrateType.Unmovable, block.MigrateType);
        Assert.Equal(0, before);
        Assert.Equal(2, after.PageblocksByType[(int)MigrateType.Unmovable]); // an order-10 block is two pageblocks
        Assert.Equal(1, after.Event(VmEvent.FallbackClaim));
        Assert.Equal(0, after.Event(VmEvent.FallbackSteal));
        m.AssertConsistent();
    }

    [Fact]
    public void ZoneWatermarkOk_GfpHighTakesHalfOfMin_AndNonBlockingAQuarterOfTheRest()
    {
        // __zone_watermark_ok(): ALLOC_MIN_RESERVE (__GFP_HIGH) lowers min by min/2, and with
        // ALLOC_NON_BLOCK (no __GFP_DIRECT_RECLAIM) by a further quarter of what is left. The zone
        // has 4096 free pages.
        var zone = OneZone().Normal();
        const AllocFlags high = AllocFlags.WmarkMin | AllocFlags.MinReserve;

        Assert.False(zone.ZoneWatermarkOk(0, 6000, ZoneType.Normal, AllocFlags.WmarkMin));
        Assert.True(zone.ZoneWatermarkOk(0, 6000, ZoneType.Normal, high)); // 6000 - 3000 = 3000 < 4096
        Assert.False(zone.ZoneWatermarkOk(0, 9000, ZoneType.Normal, high)); // 4500
        Assert.True(zone.ZoneWatermarkOk(0, 9000, ZoneType.Normal, high | AllocFlags.NonBlock)); // 4500 - 1125 = 3375
        Assert.False(zone.ZoneWatermarkOk(0, 9000, ZoneType.Normal, AllocFlags.WmarkMin | AllocFlags.NonBlock)); // no __GFP_HIGH: no allowance
    }

    /// <summary>A zone whose free pages sit just under its min watermark (4000 of 4096 pages).</summary>
    private static Machine UnderMin()
    {
        var m = OneZone(minFreeKbytes: 16000);
        Assert.Equal(4000, m.Normal().Watermarks.Min);
        Assert.True(Alloc(m, "Normal", 7, "GFP_KERNEL|__GFP_MEMALLOC").IsSuccess); // 128 pages, past every watermark
        Assert.InRange(m.Normal().NrFreePages, 3900, 4000);
        return m;
    }

    [Fact]
    public void SlowPath_GfpKernelUnderMin_Fails()
    {
        // get_page_from_freelist() at the low watermark, then the slow path once at min: no reserves.
        var m = UnderMin();
        Assert.Equal(PageErrorKind.OutOfMemory, Alloc(m, "Normal", 4, "GFP_KERNEL").Error?.Kind);
    }

    [Fact]
    public void SlowPath_GfpAtomic_DipsIntoTheMinReserve()
    {
        // gfp_to_alloc_flags(): __GFP_HIGH is ALLOC_MIN_RESERVE, and without __GFP_DIRECT_RECLAIM
        // the request is ALLOC_NON_BLOCK: min 4000 becomes 1500.
        var m = UnderMin();
        var allocated = AllocUntilRefused(m, 4, "GFP_ATOMIC");
        Assert.True(allocated > 100, $"only {allocated} order-4 blocks below min");
        // It went far below min, and stopped at the lowered one: a block is refused once taking it
        // would leave no more than 1500 pages free (free - (2^order - 1) <= min).
        Assert.InRange(m.Normal().NrFreePages, 1500 - 16, 1500 + 16);
    }

    /// <summary>Allocates order-<paramref name="order"/> blocks until one is refused (out of memory); how many were allocated.</summary>
    private static int AllocUntilRefused(Machine m, int order, string gfp)
    {
        var allocated = 0;
        while (Alloc(m, "Normal", order, gfp) is var result && result.IsSuccess)
        {
            allocated++;
        }
        Assert.Equal(PageErrorKind.OutOfMemory, Alloc(m, "Normal", order, gfp).Error?.Kind);
        return allocated;
    }

    [Fact]
    public void SlowPath_GfpNowait_GetsNoReserveWithoutGfpHigh()
    {
        // ALLOC_NON_BLOCK lowers min only together with ALLOC_MIN_RESERVE (__zone_watermark_ok()).
        var m = UnderMin();
        Assert.Equal(PageErrorKind.OutOfMemory, Alloc(m, "Normal", 4, "GFP_NOWAIT").Error?.Kind);
    }

    [Fact]
    public void SlowPath_GfpMemalloc_IgnoresTheWatermarks()
    {
        // __gfp_pfmemalloc_flags(): __GFP_MEMALLOC is ALLOC_NO_WATERMARKS.
        var m = UnderMin();
        Assert.True(Alloc(m, "Normal", 9, "GFP_KERNEL|__GFP_MEMALLOC").IsSuccess);
        // No watermark at all: it takes the zone down to its last free pages, past where even
        // GFP_ATOMIC stops (1500).
        AllocUntilRefused(m, 0, "GFP_KERNEL|__GFP_MEMALLOC");
        Assert.Equal(0, m.Normal().NrFreePages);
    }

    [Fact]
    public void LowmemReserve_KeepsAFallbackZoneForItsOwnAllocations()
    {
        // setup_per_zone_lowmem_reserve(): DMA32 keeps Normal's pages / 256 = 32 pages from
        // allocations that could have used Normal (lowmem_reserve[ZONE_NORMAL]), but not from its own.
        var m = TestMachines.Small(cpus: 1);
        var dma32 = m.FindZone("DMA32")!;
        Assert.Equal(32, dma32.LowmemReserve[(int)ZoneType.Normal]);
        Assert.Equal(0, dma32.LowmemReserve[(int)ZoneType.Dma32]);

        while (Alloc(m, "Normal", 4, "GFP_KERNEL").IsSuccess)
        {
        }
        var leftForNormal = dma32.NrFreePages;
        while (Alloc(m, "DMA32", 4, "GFP_DMA32").IsSuccess)
        {
        }

        Assert.InRange(leftForNormal, 32, 32 + 15); // the last order-4 allocation stopped at the reserve
        Assert.InRange(dma32.NrFreePages, 0, 16);
        m.AssertConsistent();
    }

    [Fact]
    public void ZoneWatermarkOk_KeepsTheReserveOfGfpZone_WhicheverZoneTheWalkStartsAt()
    {
        // __alloc_pages(): ac->highest_zoneidx is gfp_zone(gfp), and zone_watermark_ok() keeps
        // z->lowmem_reserve[highest_zoneidx]. A GFP_KERNEL request could use Normal, so even when
        // PageAlloc starts its walk at DMA32 it leaves DMA32's reserve for Normal (32 pages) alone.
        var m = TestMachines.Small(cpus: 1);
        var dma32 = m.FindZone("DMA32")!;

        while (Alloc(m, "DMA32", 4, "GFP_KERNEL") is { IsSuccess: true, Value.Zone: var z } && z == dma32)
        {
        }

        Assert.InRange(dma32.NrFreePages, 32, 32 + 15);
        m.AssertConsistent();
    }

    [Fact]
    public void DrainPagesZone_DrainsInChunksOfBatchShiftedByTheScaleMax()
    {
        // drain_pages_zone(): free_pcppages_bulk() of at most batch << CONFIG_PCP_BATCH_SCALE_MAX
        // (63 << 5 = 2016) pages at a time, until the pcp is empty. The default Normal zone's pcp
        // high (2640, with THP's min_free_kbytes) lets the pcp hold more than one chunk.
        var m = new Machine(MachineConfig.Default());
        var normal = m.Normal();
        var pages = Enumerable.Range(0, 2400).Select(_ => Alloc(m, "Normal", 0, "GFP_HIGHUSER_MOVABLE").Value).ToList();
        foreach (var page in pages)
        {
            Assert.True(normal.FreePages(page.Pfn, 0, 0).IsSuccess);
        }
        var before = normal.Stats();
        var count = before.Pcp[0].Count;
        var chunk = before.Pcp[0].Batch << PageAllocConstants.PcpBatchScaleMax;
        Assert.True(count > chunk, $"the pcp holds {count} pages, not more than one chunk of {chunk}");

        Assert.True(normal.DrainPages(0).IsSuccess);

        var after = normal.Stats();
        Assert.Equal((count + chunk - 1) / chunk, after.Event(VmEvent.PcpDrain) - before.Event(VmEvent.PcpDrain));
        Assert.Equal(0, after.Pcp[0].Count);
        m.AssertConsistent();
    }

    [Fact]
    public void GfpMemalloc_TriesTheMinWatermarkFirst_ThenGoesBelowEveryWatermark()
    {
        // __alloc_pages_slowpath(): the first pass uses gfp_to_alloc_flags() (the min watermark);
        // only then does __gfp_pfmemalloc_flags() give __GFP_MEMALLOC ALLOC_NO_WATERMARKS. So with
        // Normal at its min and DMA32 above it, the page comes from DMA32, not from below Normal's min.
        var m = TestMachines.Small(cpus: 1, minFreeKbytes: 4096);
        var (normal, dma32) = (m.Normal(), m.FindZone("DMA32")!);
        var reserveForNormal = dma32.LowmemReserve[(int)ZoneType.Normal];
        while (dma32.NrFreePages > dma32.Watermarks.Low + reserveForNormal)
        {
            Assert.True(Alloc(m, "DMA32", 0, "GFP_DMA32").IsSuccess);
        }
        while (normal.NrFreePages > normal.Watermarks.Min)
        {
            Assert.Same(normal, Alloc(m, "Normal", 0, "GFP_KERNEL").Value.Zone);
        }

        var block = Alloc(m, "Normal", 0, "GFP_KERNEL|__GFP_MEMALLOC").Value;

        Assert.Same(dma32, block.Zone);
        m.AssertConsistent();
    }

    [Fact]
    public void GfpNofail_GetsHalfTheMinReserve_WhereAPlainAllocationFails()
    {
        // __alloc_pages_slowpath(), nopage: __GFP_NOFAIL tries __alloc_pages_cpuset_fallback() with
        // ALLOC_MIN_RESERVE (min/2) before retrying; a plain GFP_KERNEL allocation stops at min.
        var m = new Machine(MachineConfig.SingleNode(1, 4096, new ZoneConfig { Name = "Normal", StartPfn = 1 << 20, Pages = 1 << 14 }));
        while (Alloc(m, "Normal", 0, "GFP_KERNEL").IsSuccess)
        {
        }

        var plain = Alloc(m, "Normal", 0, "GFP_KERNEL");
        var nofail = Alloc(m, "Normal", 0, "GFP_KERNEL|__GFP_NOFAIL");

        Assert.False(plain.IsSuccess);
        Assert.True(nofail.IsSuccess);
        m.AssertConsistent();
    }

    private static Machine TwoNodes() => new(new MachineConfig
    {
        Cpus = 1,
        MinFreeKbytes = 0,
        Nodes =
        [
            new NodeConfig { Id = 0, Zones = [new ZoneConfig { Name = "DMA32", StartPfn = 4096, Pages = 1024 }, new ZoneConfig { Name = "Normal", StartPfn = 8192, Pages = 1024 }] },
            new NodeConfig { Id = 1, Zones = [new ZoneConfig { Name = "Normal", StartPfn = 16384, Pages = 1024 }] },
        ],
    });

    [Fact]
    public void Zonelist_FallsBackToLowerZonesOfTheNodeFirst_ThenToOtherNodes()
    {
        // build_zonelists(): the preferred node's zones from the highest allowed down, then the
        // other nodes' in find_next_best_node() order.
        var m = TwoNodes();
        var zones = new List<string>();
        for (var i = 0; i < 3 * 1024 / 256; i++)
        {
            if (Alloc(m, "Normal", 8, "GFP_KERNEL") is { IsSuccess: true } block)
            {
                zones.Add(block.Value.Zone.Key);
            }
        }

        var order = zones.Distinct().ToList();
        Assert.Equal(["Normal", "DMA32", "Normal@1"], order);
        m.AssertConsistent();
    }

    /// <summary>Three one-zone nodes with 2 cpus each; distances from the SLIT rows given, or the default 10/20.</summary>
    private static Machine ThreeNodes(List<int>[]? distances = null, long minFreeKbytes = 0) => new(new MachineConfig
    {
        Cpus = 6,
        MinFreeKbytes = minFreeKbytes,
        Nodes = [.. Enumerable.Range(0, 3).Select(n => new NodeConfig
        {
            Id = n,
            Distances = distances?[n],
            Zones = [new ZoneConfig { Name = "Normal", StartPfn = 0x10000 * (n + 1), Pages = 4096 }],
        })],
    });

    private static string NodeOrder(Machine m, string zone) =>
        string.Join(",", m.ZonelistOf(m.FindZone(zone)!, ZoneType.Normal).Select(z => z.NodeId));

    [Fact]
    public void Zonelists_OfEquallyDistantNodes_AreRotated_ByNodeLoad()
    {
        // find_next_best_node(): nodes below the local one get a +1 penalty and node_load[] (raised
        // for the first node of each distance group, across the whole build) breaks ties, so no
        // node is everyone's first fallback: 0 -> 1,2; 1 -> 2,0; 2 -> 0,1 (not 1 -> 0,2 by id).
        var m = ThreeNodes();

        Assert.Equal("0,1,2", NodeOrder(m, "Normal"));
        Assert.Equal("1,2,0", NodeOrder(m, "Normal@1"));
        Assert.Equal("2,0,1", NodeOrder(m, "Normal@2"));
    }

    [Fact]
    public void Zonelists_FollowTheNodeDistances()
    {
        // node_distance() first: node 0 is nearer to node 2 (15) than to node 1 (30).
        var m = ThreeNodes([[10, 30, 15], [30, 10, 30], [15, 30, 10]]);

        Assert.Equal("0,2,1", NodeOrder(m, "Normal"));
        Assert.Equal("2,0,1", NodeOrder(m, "Normal@2"));
    }

    [Fact]
    public void ZoneHighsize_SplitsTheLowWatermark_AcrossTheCpusOfTheZonesNode()
    {
        // zone_highsize(): nr_split_cpus = cpumask_weight(cpumask_of_node(nid)): 2 of the 6 cpus here.
        var zone = ThreeNodes(minFreeKbytes: 8192).FindZone("Normal@1")!;
        var pcp = zone.Stats().Pcp[0];

        Assert.Equal(852, zone.Watermarks.Low);
        Assert.Equal(852 / 2, pcp.HighMin); // not 852 / 6
    }

    [Fact]
    public void AllocNofragment_IsDroppedBeforeGoingToAnotherNode()
    {
        // get_page_from_freelist(): with ALLOC_NOFRAGMENT, reaching a remote node's zone restarts the
        // walk without it, so a local fragmenting fallback (stealing a movable page) is preferred to
        // a remote node. Node 0 here has only small movable free blocks left; node 1 is untouched.
        var m = TwoNodes();
        while (Alloc(m, "Normal", 9, "GFP_HIGHUSER_MOVABLE|__GFP_THISNODE").IsSuccess)
        {
        }
        var smalls = new List<AllocatedBlock>();
        while (Alloc(m, "Normal", 0, "GFP_HIGHUSER_MOVABLE|__GFP_THISNODE") is { IsSuccess: true } small)
        {
            smalls.Add(small.Value);
        }
        foreach (var page in smalls.Where((_, i) => i % 4 == 0))
        {
            Assert.True(page.Zone.FreePages(page.Pfn, 0, 0).IsSuccess);
        }
        Assert.True(m.FindZone("Normal")!.DrainPages(null).IsSuccess);

        var unmovable = Alloc(m, "Normal", 0, "GFP_KERNEL").Value;

        Assert.Equal(0, unmovable.Zone.NodeId);
        Assert.Equal(1024, m.FindZone("Normal@1")!.NrFreePages);
        m.AssertConsistent();
    }

    [Fact]
    public void GfpThisnode_NeverLeavesThePreferredNode()
    {
        // __GFP_THISNODE: the zonelist holds the preferred node's zones only (ZONELIST_NOFALLBACK).
        var m = TwoNodes();
        while (Alloc(m, "Normal", 8, "GFP_KERNEL|__GFP_THISNODE") is { IsSuccess: true } block)
        {
            Assert.Equal(0, block.Value.Zone.NodeId);
        }
        Assert.Equal(1024, m.FindZone("Normal@1")!.NrFreePages);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void RmqueueBulk_RefillsAnEmptyPcpListWithNrPcpAllocBlocks(int order)
    {
        // rmqueue_pcplist() -> rmqueue_bulk(nr_pcp_alloc()): batch blocks, batch >> order (at
        // least 2) for higher orders; one is handed out, the rest stay on the list.
        var m = OneZone(pages: 65536);
        var zone = m.Normal();
        var batch = zone.Stats().Pcp[0].Batch;
        var blocks = Math.Max(batch >> order, 2);

        Assert.True(Alloc(m, "Normal", order, "GFP_KERNEL").Value.FromPcp);

        var stats = zone.Stats();
        Assert.Equal(blocks << order, stats.Event(VmEvent.PcpRefillPages));
        Assert.Equal((blocks - 1) << order, stats.Pcp[0].Count);
    }

    [Fact]
    public void FreeFrozenPageCommit_AtHigh_ReturnsPagesInBatchSizedCalls()
    {
        // free_frozen_page_commit(): when pcp->count reaches nr_pcp_high(), nr_pcp_free() pages go back
        // to the buddy in free_pcppages_bulk() calls of at most batch pages each (the current kernel).
        var m = OneZone(pages: 65536);
        var zone = m.Normal();
        var pages = new List<long>();
        for (var i = 0; i < 12000; i++) // more than high_max (8192 here): high cannot grow to hold them all
        {
            pages.Add(Alloc(m, "Normal", 0, "GFP_KERNEL").Value.Pfn);
        }
        var before = zone.Stats();

        foreach (var pfn in pages)
        {
            Assert.True(zone.FreePages(pfn, 0, 0).IsSuccess);
        }

        var stats = zone.Stats();
        var batch = stats.Pcp[0].Batch;
        var calls = stats.Event(VmEvent.PcpDrain) - before.Event(VmEvent.PcpDrain);
        var drained = stats.Event(VmEvent.PcpDrainPages) - before.Event(VmEvent.PcpDrainPages);
        Assert.True(calls >= 2, $"{calls} free_pcppages_bulk() calls {stats.Pcp[0]}");
        Assert.True(drained <= calls * batch, $"{drained} pages in {calls} calls of at most {batch}");
        Assert.True(drained > calls * (batch - 1) / 2, "the calls are batch-sized, not single pages");
        m.AssertConsistent();
    }
}
