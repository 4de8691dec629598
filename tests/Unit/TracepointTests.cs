using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Tests.Unit;

/// <summary>
/// The kmem tracepoints: which events each allocator call emits (as the kernel's call sites do),
/// their fields, their text as TP_printk and perf script print it, filters, and lost events.
/// </summary>
public class TracepointTests
{
    private static TraceEvent[] Drain(TraceListener listener)
    {
        var events = new List<TraceEvent>();
        while (listener.Events.TryRead(out var e))
        {
            events.Add(e);
        }
        return [.. events];
    }

    private static (Machine Machine, TraceListener Listener) Traced(TraceFilter? filter = null, int capacity = 1 << 16)
    {
        var machine = TestMachines.SingleZone(1 << 20, 1 << 15, cpus: 2);
        return (machine, machine.Tracepoints.Listen(filter ?? new TraceFilter(TraceFilter.AllTypes), capacity));
    }

    [Fact]
    public void NoListener_TracepointsAreOff()
    {
        var machine = TestMachines.SingleZone(1 << 20, 1 << 15);

        Assert.False(machine.Tracepoints.Enabled);
        using (machine.Tracepoints.Listen(new TraceFilter(TraceFilter.AllTypes), 16))
        {
            Assert.True(machine.Tracepoints.Enabled);
        }
        Assert.False(machine.Tracepoints.Enabled);
    }

    [Fact]
    public void AllocPages_EmitsMmPageAlloc_WithTheBlockAndTheGfp()
    {
        var (machine, listener) = Traced();

        var block = machine.Alloc("Normal", 3, "GFP_KERNEL|__GFP_COMP", cpu: 1);

        var alloc = Assert.Single(Drain(listener), e => e.Type == TraceEventType.MmPageAlloc);
        Assert.Equal(block.Pfn, alloc.Pfn);
        Assert.Equal(3, alloc.Order);
        Assert.Equal(1, alloc.Cpu);
        Assert.Equal((int)MigrateType.Unmovable, alloc.MigrateType);
        Assert.Equal("GFP_KERNEL|__GFP_COMP", Gfp.Format(alloc.Gfp));
    }

    [Fact]
    public void AFailedAllocation_EmitsMmPageAlloc_WithANullPage()
    {
        var (machine, listener) = Traced();
        while (machine.AllocPages(machine.Normal(), 10, Gfp.Kernel, 0).IsSuccess)
        {
        }

        var failed = Drain(listener).Last(e => e.Type == TraceEventType.MmPageAlloc);

        Assert.Equal(0, failed.Pfn);
        Assert.StartsWith("page=0000000000000000 pfn=0x0 order=10", TraceText.Fields(in failed), StringComparison.Ordinal);
    }

    [Fact]
    public void APcpRefill_EmitsMmPageAllocZoneLocked_PerBlock_WithPercpuRefill()
    {
        // rmqueue_bulk() takes batch blocks under zone->lock, each through __rmqueue_smallest().
        var (machine, listener) = Traced();

        machine.Alloc("Normal", 0, "GFP_HIGHUSER_MOVABLE");

        var locked = Drain(listener).Where(e => e.Type == TraceEventType.MmPageAllocZoneLocked).ToArray();
        Assert.Equal(machine.Normal().Stats().Pcp[0].Batch, locked.Length);
        Assert.All(locked, e => Assert.True(e.Flag && e.Order == 0 && e.MigrateType == (int)MigrateType.Movable));
    }

    [Fact]
    public void AFallback_EmitsMmPageAllocExtfrag_WithTheClaimedBlock()
    {
        // Every pageblock boots movable: the first unmovable allocation claims an order-10 block.
        var (machine, listener) = Traced();

        machine.Alloc("Normal", 4, "GFP_KERNEL");

        var extfrag = Assert.Single(Drain(listener), e => e.Type == TraceEventType.MmPageAllocExtfrag);
        Assert.Equal(4, extfrag.Order);
        Assert.Equal(10, extfrag.FallbackOrder);
        Assert.Equal((int)MigrateType.Unmovable, extfrag.MigrateType);
        Assert.Equal((int)MigrateType.Movable, extfrag.FallbackMigrateType);
        Assert.True(extfrag.Flag); // the pageblock is now unmovable: change_ownership=1
        Assert.EndsWith("alloc_order=4 fallback_order=10 pageblock_order=9 alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1",
            TraceText.Fields(in extfrag), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(FreeStrategy.PerPage, 512, 0)]
    [InlineData(FreeStrategy.Chunked, 1, 9)]
    [InlineData(FreeStrategy.Upstream, 1, 9)]
    public void FreeContigRange_EmitsMmPageFreePerPage_AndOneChunkEventPerChunk(FreeStrategy strategy, int chunks, int chunkOrder)
    {
        var (machine, listener) = Traced();
        var block = machine.Alloc("Normal", 9);
        Assert.True(machine.Normal().SplitPage(block.Pfn, 9).IsSuccess);
        Drain(listener);

        Assert.True(machine.Normal().FreeContigRange(block.Pfn, 512, strategy, 0).IsSuccess);

        var events = Drain(listener);
        var frees = events.Where(e => e.Type == TraceEventType.MmPageFree).ToArray();
        Assert.Equal(Enumerable.Range(0, 512).Select(i => block.Pfn + i), frees.Select(e => e.Pfn)); // free_pages_prepare() on each page, in order
        Assert.All(frees, e => Assert.Equal(0, e.Order));
        var chunkEvents = events.Where(e => e.Type == TraceEventType.RangeFreeChunk).ToArray();
        Assert.Equal(chunks, chunkEvents.Length);
        Assert.All(chunkEvents, e => Assert.Equal((chunkOrder, strategy), (e.Order, e.Strategy)));
    }

    [Fact]
    public void APcpOverflow_EmitsMmPagePcpuDrain_PerBlockReturned()
    {
        var (machine, listener) = Traced();
        var block = machine.Alloc("Normal", 9);
        Assert.True(machine.Normal().SplitPage(block.Pfn, 9).IsSuccess);
        Drain(listener);

        Assert.True(machine.Normal().FreeContigRange(block.Pfn, 512, FreeStrategy.PerPage, 0).IsSuccess);

        var stats = machine.Normal().Stats();
        var drained = Drain(listener).Where(e => e.Type == TraceEventType.MmPagePcpuDrain).ToArray();
        Assert.Equal(stats.Event(VmEvent.PcpDrainPages), drained.Sum(e => 1L << e.Order));
        Assert.NotEmpty(drained);
    }

    [Fact]
    public void TheVmstatWorkersDrains_AreTheDecayedCpusEvents_WhateverCpuTheThreadLastCalledOn()
    {
        var (machine, listener) = Traced();
        var zone = machine.Zones[0];
        var pages = new List<long>();
        for (var i = 0; i < 3000; i++)
        {
            pages.Add(machine.AllocPages(zone, 0, Gfp.Kernel, cpu: 1).Value.Pfn);
        }
        foreach (var pfn in pages)
        {
            Assert.True(zone.FreePages(pfn, 0, 1).IsSuccess); // cpu 1's pcp grows past high_min
        }
        Assert.True(machine.AllocPages(zone, 0, Gfp.Kernel, cpu: 0).IsSuccess); // the thread's last call is on cpu 0
        Drain(listener);

        Assert.True(machine.VmstatUpdate() > 0);

        var drains = Drain(listener).Where(e => e.Type == TraceEventType.MmPagePcpuDrain).ToArray();
        Assert.NotEmpty(drains);
        Assert.All(drains, e => Assert.Equal(1, e.Cpu));
    }

    [Fact]
    public void AFilter_KeepsOnlyItsTypesZoneAndOrder()
    {
        var (machine, listener) = Traced(new TraceFilter(TraceFilter.TypeBit(TraceEventType.MmPageAlloc), Zone: 0, Order: 2));

        machine.Alloc("Normal", 1);
        machine.Alloc("Normal", 2);
        machine.Alloc("Normal", 2);

        var events = Drain(listener);
        Assert.Equal(2, events.Length);
        Assert.All(events, e => Assert.Equal((TraceEventType.MmPageAlloc, 2), (e.Type, e.Order)));
    }

    [Fact]
    public void AFullBuffer_DropsAndCountsTheLostEvents_WithoutStoppingTheAllocator()
    {
        var (machine, listener) = Traced(new TraceFilter(TraceFilter.TypeBit(TraceEventType.MmPageAlloc)), capacity: 10);

        for (var i = 0; i < 25; i++)
        {
            machine.Alloc("Normal", 0);
        }

        Assert.Equal(10, Drain(listener).Length);
        Assert.Equal(15, listener.TakeLost());
        Assert.Equal(0, listener.TakeLost()); // reported once
        machine.AssertConsistent();
    }

    [Theory]
    // Lines of a real kernel's perf script output (Linux 6.18, x86-64; the trace in
    // ../shared/fixtures/traces, recorded with perf record -e kmem:...), cut to what PageAlloc models.
    [InlineData("            perf 19591 [001]  3521.557970:             kmem:mm_page_alloc: page=0x175b1d pfn=0x175b1d order=0 migratetype=0 gfp_flags=GFP_KERNEL",
        TraceEventType.MmPageAlloc, 1, 0x175b1dL, 0, 0)]
    [InlineData("       perf-exec 19592 [000]  3521.559551:              kmem:mm_page_free: page=0x1746fa pfn=0x1746fa order=0",
        TraceEventType.MmPageFree, 0, 0x1746faL, 0, 0)]
    [InlineData("             git 19594 [000]  3521.562218: kmem:mm_page_alloc_zone_locked: page=0x106b5b pfn=0x106b5b order=0 migratetype=0 percpu_refill=1",
        TraceEventType.MmPageAllocZoneLocked, 0, 0x106b5bL, 0, 0)]
    public void PerfScriptLine_HasARealTracesLayout(string real, TraceEventType type, int cpu, long pfn, int order, int mt)
    {
        var comm = real[..16].Trim();
        var pid = int.Parse(real[17..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        var seconds = double.Parse(real.Split(']')[1].Split(':')[0], System.Globalization.CultureInfo.InvariantCulture);
        var e = new TraceEvent(type, (long)Math.Round(seconds * System.Diagnostics.Stopwatch.Frequency), cpu, 0, pfn, order, mt,
            Flag: type == TraceEventType.MmPageAllocZoneLocked, Gfp: Gfp.Kernel);

        Assert.Equal(real, TraceText.PerfScriptLine(in e, comm, pid));
    }
}
